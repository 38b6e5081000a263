"""How the project's messages name things: a few ids of a long list, an error's reason
in plain words (TensorFlow's graph paths and op names left out), and the loops over many
files whose failures are named one line each while the rest go on."""

import re

# TensorFlow's prefix naming the graph function ("{{function_node __wrapped__DecodeJpeg_...}}")
# and suffix naming the op ("[Op:DecodeJpeg]", "[[{{node DecodeJpeg}}]]").
_GRAPH_PREFIX = re.compile(r"^\{\{[^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*(\[Op:[^\]]*\]|\[\[\{\{node [^}]*\}\}\]\])\s*$")


def list_some(items, *, limit=5):
    """The first `limit` of `items`, sorted, comma-separated, and how many more:
    "a, b, c and 4 more"."""
    items = [str(item) for item in sorted(items)]
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def reason(error):
    """An exception's first line, without TensorFlow's graph-function prefix and op
    suffix; the exception's type where nothing is left."""
    text = str(getattr(error, "message", None) or error).strip()
    first = text.splitlines()[0] if text else ""
    first = _OP_SUFFIX.sub("", _GRAPH_PREFIX.sub("", first)).strip()
    return first or type(error).__name__


def each_item(items, work, *, on_error, progress=None):
    """`work(item)` for every item; an item whose work raises ValueError or OSError is
    named through `on_error(message)` and skipped, the others still run.
    `progress.update(done)` after each (`console.make_progress`), if given.

    Returns:
      The items that failed.
    """
    failed = []
    for done, item in enumerate(items, 1):
        try:
            work(item)
        except (ValueError, OSError) as e:
            failed.append(item)
            on_error(str(e))
        if progress is not None:
            progress.update(done)
    return failed
