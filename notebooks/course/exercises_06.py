"""Notebook 06's exercise checkers (masks in transformers); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs. A blank answer (None, or a function that still returns None) never reaches
a checker: the front door says it is not answered yet.
"""

import torch


def _first_turn_only(wanted):
    """``wanted`` with every assistant turn after the first one set to -100."""
    rows = []
    for row in wanted:
        kept = [label != -100 for label in row]
        if True not in kept:
            rows.append(row)
            continue
        first_end = next((t for t in range(kept.index(True), len(row)) if not kept[t]), len(row))
        rows.append(row[:first_end] + [-100] * (len(row) - first_end))
    return rows


def _check_assistant_labels(assistant_labels):
    # <|user|>=11 <|assistant|>=12 <|end|>=13, pad 0; the third chat was cut off inside an assistant turn
    ids = torch.tensor(
        [
            [11, 4, 13, 12, 4, 5, 13, 0, 0, 0],
            [11, 6, 13, 12, 9, 13, 11, 7, 13, 0],
            [11, 6, 7, 13, 12, 9, 10, 4, 5, 6],
        ]
    )
    want = [
        [-100, -100, -100, -100, 4, 5, 13, -100, -100, -100],
        [-100, -100, -100, -100, 9, 13, -100, -100, -100, -100],
        [-100, -100, -100, -100, -100, 9, 10, 4, 5, 6],
    ]
    # Two assistant turns per chat: notebook 06's chat, and one whose second turn was cut off.
    two_turns = torch.tensor(
        [
            [11, 4, 13, 12, 4, 5, 13, 11, 6, 7, 8, 13, 12, 9, 10, 13],
            [11, 6, 13, 12, 9, 13, 11, 7, 13, 12, 10, 4, 5, 6, 7, 8],
        ]
    )
    want_two = [
        [-100, -100, -100, -100, 4, 5, 13, -100, -100, -100, -100, -100, -100, 9, 10, 13],
        [-100, -100, -100, -100, 9, 13, -100, -100, -100, -100, 10, 4, 5, 6, 7, 8],
    ]
    for input_ids, wanted in [(ids, want), (ids[1:2, :6], [want[1][:6]]), (two_turns, want_two)]:
        before = input_ids.clone()
        got = assistant_labels(input_ids, 12, 13)
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert torch.equal(input_ids, before), "input_ids were changed: build the labels in a new tensor"
        assert got.dtype == torch.long, f"labels should be int64 (torch.long), got {got.dtype}"
        assert got.shape == input_ids.shape, f"labels should have the shape of input_ids, got {tuple(got.shape)}"
        message = f"for input_ids {input_ids.tolist()} expected {wanted}, got {got.tolist()}"
        if got[:, :-1].tolist() == [row[1:] for row in wanted] or got[:, 1:].tolist() == [row[:-1] for row in wanted]:
            message += " (shifted by one: transformers labels line up with input_ids; the model shifts them)"
        elif got.tolist() == _first_turn_only(wanted) != wanted:
            message += (
                " (only the first assistant turn is labelled: a chat can hold several, and every one of them,"
                " with its end token, is a target)"
            )
        assert got.tolist() == wanted, message


def _check_pack(pack):
    cases = [  # (docs, input_ids, labels, position_ids)
        ([[4, 5, 1], [6, 7, 8, 1]], [4, 5, 1, 6, 7, 8, 1], [-100, 5, 1, -100, 7, 8, 1], [0, 1, 2, 0, 1, 2, 3]),
        ([[9, 1], [3], [2, 2, 1]], [9, 1, 3, 2, 2, 1], [-100, 1, -100, -100, 2, 1], [0, 1, 0, 0, 1, 2]),
        ([[5, 6, 1]], [5, 6, 1], [-100, 6, 1], [0, 1, 2]),
    ]
    for docs, *wanted in cases:
        got = pack([list(doc) for doc in docs])
        keys = ("input_ids", "labels", "position_ids")
        assert isinstance(got, dict) and set(got) >= set(keys), f"return a dict with the keys {list(keys)}"
        for key, want in zip(keys, wanted, strict=True):
            value = got[key]
            assert isinstance(value, torch.Tensor), f"{key} should be a tensor, got {type(value).__name__}"
            assert value.dtype == torch.long, f"{key} should be int64 (torch.long), got {value.dtype}"
            assert value.shape == (1, len(want)), f"{key} should have shape (1, {len(want)}), got {tuple(value.shape)}"
            assert value.tolist() == [want], f"for docs {docs} {key} should be {[want]}, got {value.tolist()}"


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "06-assistant-labels": (
        _check_assistant_labels,
        "walk each row: after an assistant header, keep tokens up to and including the next end-of-turn",
    ),
    "06-pack": (_check_pack, "labels: [-100] + doc[1:] for each doc; positions: range(len(doc)) for each doc"),
}
