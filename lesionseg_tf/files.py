"""Writing files so that a crash never leaves a partial one under the final name."""

import os
import tempfile


def write_atomically(path, payload):
    """Writes `payload` (bytes, or str as UTF-8) to `path` through a temporary file in
    the same folder, renamed into place: a reader (or the ISIC scorer) sees the old
    file or the whole new one, never a part."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".partial-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(payload)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
