"""Notebook 02's exercise checkers (variable-length padding); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs. A blank answer (None, or a function that still returns None) never reaches
a checker: the front door says it is not answered yet.
"""

import torch

_LONG_IDS = (
    "should be int64 (torch.long), got {dtype}: an embedding refuses float ids, and cross_entropy refuses "
    "float and int32 class targets (notebook 03 §10); build it with pad_sequence, or torch.full(..., dtype=torch.long)"
)


def _assert_long(name, tensor):
    assert tensor.dtype == torch.long, f"{name} " + _LONG_IDS.format(dtype=tensor.dtype)


def _padded_left(rows, batch):
    """The right-padded rows as they look padded on the left: the padding moved to the front."""
    lengths = [len(example["input_ids"]) for example in batch]
    return [row[n:] + row[:n] for row, n in zip(rows, lengths, strict=True)]


def _check_collate(collate):
    pairs = [([3, 1, 4], [1, 0, 2]), ([5], [2]), ([9, 2], [0, 1])]
    batch = [{"input_ids": torch.tensor(x), "labels": torch.tensor(y)} for x, y in pairs]
    want = {"input_ids": [[3, 1, 4], [5, 0, 0], [9, 2, 0]], "labels": [[1, 0, 2], [2, -100, -100], [0, 1, -100]]}
    want["attention_mask"] = [[True, True, True], [True, False, False], [True, True, False]]
    one = {"input_ids": [[5]], "labels": [[2]], "attention_mask": [[True]]}  # a batch of one: nothing to pad
    # a real token with the pad id 0 (an EOS used as pad) and a masked prompt label: no value test finds the padding
    tricky = [
        {"input_ids": torch.tensor([0, 7, 2]), "labels": torch.tensor([-100, 5, 1])},
        {"input_ids": torch.tensor([4]), "labels": torch.tensor([3])},
    ]
    want_tricky = {"input_ids": [[0, 7, 2], [4, 0, 0]], "labels": [[-100, 5, 1], [3, -100, -100]]}
    want_tricky["attention_mask"] = [[True, True, True], [True, False, False]]
    for given, wanted in [(batch, want), (batch[1:2], one), (tricky, want_tricky)]:
        got = collate(given)
        assert isinstance(got, dict) and set(got) == set(wanted), f"return a dict with the keys {sorted(wanted)}"
        assert got["attention_mask"].dtype == torch.bool, (
            f"attention_mask should be a bool tensor, got {got['attention_mask'].dtype}: Hugging Face tokenizers "
            "and collators return int64 1s and 0s, which models accept as well, but this exercise asks for the "
            "bool mask that lengths_to_mask gives"
        )
        _assert_long("input_ids", got["input_ids"])
        _assert_long("labels", got["labels"])
        for key in wanted:
            message = f"{key} should be {wanted[key]}, got {got[key].tolist()}"
            if key == "attention_mask" and given is tricky:
                message += " (a real token can have the pad id, and a real label can be -100: use the lengths)"
            if len(given) > 1 and got[key].tolist() == _padded_left(wanted[key], given):
                message += " (that is padding on the left: pad on the right, as pad_sequence does by default)"
            assert got[key].tolist() == wanted[key], message


def _check_causal_targets(causal_pair):
    cases = [  # (eos_id, token lists, inputs, targets)
        (0, [[5, 2, 7], [3, 8]], [[5, 2, 7], [3, 8, 0]], [[2, 7, 0], [8, 0, -100]]),
        (9, [[4], [1, 2, 3]], [[4, 9, 9], [1, 2, 3]], [[9, -100, -100], [2, 3, 9]]),
        (9, [[1, 2], [3, 4]], [[1, 2], [3, 4]], [[2, 9], [4, 9]]),
        (0, [[5, 0, 7], [3]], [[5, 0, 7], [3, 0, 0]], [[0, 7, 0], [0, -100, -100]]),  # EOS id inside a text
    ]
    for eos, seqs, want_x, want_y in cases:
        got = causal_pair([torch.tensor(s) for s in seqs], eos)
        x, y = got
        assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor), "return (inputs, targets) tensors"
        _assert_long("inputs", x)
        _assert_long("targets", y)
        case = f"for {seqs} and eos_id={eos}"
        assert x.tolist() == want_x, f"{case} inputs should be {want_x}, got {x.tolist()}"
        assert y.tolist() == want_y, f"{case} targets should be {want_y}, got {y.tolist()}"


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "02-collate": (_check_collate, "pad each key with its own value; the mask compares positions with lengths"),
    "02-causal-targets": (
        _check_causal_targets,
        "append EOS, pad with it, shift by one, then mask by length, not value",
    ),
}
