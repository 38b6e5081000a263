"""The project's way of naming things in messages (lesionseg_tf/messages.py)."""

import pytest
import tensorflow as tf

from lesionseg_tf import messages


def test_list_some_names_the_first_sorted_and_counts_the_rest():
    assert messages.list_some(["c", "a", "b"]) == "a, b, c"
    assert messages.list_some([f"id{i}" for i in range(9, 0, -1)], limit=3) == (
        "id1, id2, id3 and 6 more"
    )
    assert messages.list_some([]) == ""


def test_reason_drops_tensorflows_graph_path_and_op_name():
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        tf.io.decode_jpeg(b"\xff\xd8\xff\xe0 not a jpeg")
    raw = raised.value.message
    assert "Op:" in raw or "{{" in raw  # what a user would otherwise read
    plain = messages.reason(raised.value)
    assert plain and "{{" not in plain and "[Op:" not in plain and "\n" not in plain
    assert messages.reason(ValueError("first line\nsecond")) == "first line"
    assert messages.reason(KeyError()) == "KeyError"


def test_each_item_names_a_failure_and_goes_on():
    done, lines, seen = [], [], []

    class Progress:
        def update(self, count):
            seen.append(count)

    def work(item):
        if item == "bad":
            raise ValueError("bad: not an image")
        done.append(item)

    failed = messages.each_item(["a", "bad", "c"], work, on_error=lines.append, progress=Progress())
    assert (failed, done, lines, seen) == (["bad"], ["a", "c"], ["bad: not an image"], [1, 2, 3])
    with pytest.raises(KeyError):  # anything else is a bug, not a bad file: it stops
        messages.each_item(["x"], lambda item: {}[item], on_error=lines.append)
