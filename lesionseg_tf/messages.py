"""How the project's messages name things: a few ids of a long list, and an error's
reason in plain words (TensorFlow's graph paths and op names left out)."""

import re

# TensorFlow's prefix naming the graph function ("{{function_node __wrapped__DecodeJpeg_...}}")
# and suffix naming the op ("[Op:DecodeJpeg]", "[[{{node DecodeJpeg}}]]").
_GRAPH_PREFIX = re.compile(r"^\{\{[^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*(\[Op:[^\]]*\]|\[\[\{\{node [^}]*\}\}\]\])\s*$")


def list_some(items, *, limit=5):
    """The first `limit` of `items`, sorted, comma-separated, and how many more:
    "a, b, c and 4 more"."""
    items = sorted(str(item) for item in items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def reason(error):
    """An exception's first line, without TensorFlow's graph-function prefix and op
    suffix; the exception's type where nothing is left."""
    text = str(getattr(error, "message", None) or error).strip()
    first = text.splitlines()[0] if text else ""
    first = _OP_SUFFIX.sub("", _GRAPH_PREFIX.sub("", first)).strip()
    return first or type(error).__name__
