"""How the project's messages name things: a few ids of a long list, an error's reason
in plain words (TensorFlow's graph paths and op names left out), a long wait, and the
loops over many files whose failures are named one line each while the rest go on."""

import re
import time

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


def duration(seconds):
    """`seconds` as a person reads a long wait: "40 s", "12 min 5 s", "1 h 3 min"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


# The least time between two lines of a `TimedProgress` (by default).
PROGRESS_EVERY_SECONDS = 60.0


class TimedProgress:
    """Lines of progress through a long loop, for a log file, where nothing else would
    be said until its end: `update(done)` after each of its `total` items.

    After an update at least `every_seconds` after the start (the object's making)
    or the last line, `report(line)` is given the items done, the time taken and the
    time the rest should take at that pace: "  {label}: 8/50 steps in 2 min 16 s,
    about 11 min 54 s {rest}". None at the last item (the caller's own line follows
    at once), so a loop shorter than `every_seconds` says nothing.
    """

    def __init__(
        self, total, *, label, unit, report, rest="to go", every_seconds=None, clock=time.monotonic
    ):
        self.total, self.label, self.unit, self.rest = total, label, unit, rest
        self.report, self.clock = report, clock
        self.every_seconds = PROGRESS_EVERY_SECONDS if every_seconds is None else every_seconds
        self._start = self._last = clock()

    def update(self, done):
        now = self.clock()
        if now - self._last < self.every_seconds or done >= self.total:
            return
        self._last = now
        taken = now - self._start
        left = taken / done * (self.total - done)
        self.report(
            f"  {self.label}: {done}/{self.total} {self.unit} in {duration(taken)}, "
            f"about {duration(left)} {self.rest}"
        )
