"""Writing files and folders so that a crash never leaves a partial one under the
final name, with the modes the user's umask gives any other file."""

import contextlib
import glob
import os
import secrets
import shutil

PARTIAL_PREFIX = ".partial-"


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` for the caller to write a file or a
    folder to; when the block ends without an exception, it is renamed to `path`
    (a folder already there is moved aside and removed), else removed.

    Nothing is created at the temporary path, so whatever the caller writes there
    gets the umask's modes, not a private temporary file's 0600. After the rename,
    what killed writes of the same `path` left behind is removed.
    """
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f"{PARTIAL_PREFIX}{secrets.token_hex(4)}-{name}")
    try:
        yield temporary
        if os.path.isdir(temporary) and os.path.isdir(path):
            _replace_dir(temporary, path)
        else:
            os.replace(temporary, path)
        for debris in glob.glob(os.path.join(glob.escape(folder), f"{PARTIAL_PREFIX}*-{name}")):
            shutil.rmtree(debris) if os.path.isdir(debris) else os.remove(debris)
    finally:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
        elif os.path.lexists(temporary):
            os.remove(temporary)


def _replace_dir(source, target):
    """Moves folder `source` to `target` with two renames. A crash between them leaves
    no `target` (never a partial one) and the previous folder in `target.old`, which
    the next replacement clears."""
    old = target + ".old"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)


def write_atomically(path, *, payload):
    """Writes `payload` (bytes, or str as UTF-8) to `path` through `atomic_path`: a
    reader (or the ISIC scorer) sees the old file or the whole new one, never a part."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    with atomic_path(path) as temporary:
        with open(temporary, "xb") as f:
            f.write(payload)
