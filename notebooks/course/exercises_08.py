"""Notebook 08's exercise checkers (masks beyond next-token prediction); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs, and names the classic mistake when the answer matches it. A blank answer
(None, or a function that still returns None) never reaches a checker: the front door says so.
"""

import math

import numpy as np
import torch

# (word_ids, word_labels, b_to_i, token labels); None marks special tokens and padding. The first three use the
# notebook's tags (B-PER=1 I-PER=2 B-LOC=3 I-LOC=4); the last a tag set whose B- ids are even and whose I- ids
# are not B- + 1 (O=0 B-ORG=2 I-LOC=1 B-LOC=4 I-ORG=5, 3 another I- tag), so an answer that ignores b_to_i fails.
B_TO_I = {1: 2, 3: 4}
OTHER_B_TO_I = {2: 5, 4: 1}
ALIGN_CASES = [
    ([None, 0, 1, 2, 3, 3, None], [1, 0, 0, 3], B_TO_I, [-100, 1, 0, 0, 3, 4, -100]),
    ([None, 0, 0, 0, 1, None, None, None], [3, 0], B_TO_I, [-100, 3, 4, 4, 0, -100, -100, -100]),
    ([None, 0, 1, 1, 2, 2, None], [1, 2, 0], B_TO_I, [-100, 1, 2, 2, 0, 0, -100]),
    ([None, 0, 0, 1, 2, 2, 2, 3, 3, None], [2, 0, 4, 3], OTHER_B_TO_I, [-100, 2, 5, 0, 4, 1, 1, 3, 3, -100]),
]


def _align(word_ids, word_labels, later):
    """The alignment with ``later(label)`` on the later pieces of a word."""
    return [
        -100 if w is None else word_labels[w] if w != v else later(word_labels[w])
        for w, v in zip(word_ids, [None, *word_ids[:-1]], strict=True)
    ]


def _check_align_all_tokens(align_all_tokens):
    for word_ids, word_labels, b_to_i, want in ALIGN_CASES:
        got = align_all_tokens(list(word_ids), list(word_labels), dict(b_to_i))
        if isinstance(got, torch.Tensor | np.ndarray):  # an array of the right labels is a right answer too
            got = got.tolist()
        assert isinstance(got, list), f"return a list of ints, one per token, got {type(got).__name__}"
        assert len(got) == len(word_ids), f"return one label per token: {len(word_ids)}, got {len(got)}"
        message = f"for word_ids {word_ids}, word labels {word_labels} and b_to_i {b_to_i} expected {want}, got {got}"
        if got == _align(word_ids, word_labels, lambda label: label):
            message += " (a later piece kept its word's B- tag: each piece would start a new entity; use b_to_i)"
        elif got == _align(word_ids, word_labels, lambda label: -100):
            message += " (-100 on the later pieces is the first-piece alignment; here every piece gets a label)"
        elif got in (
            _align(word_ids, word_labels, lambda label: label + 1 if label % 2 == 1 else label),
            _align(word_ids, word_labels, lambda label: B_TO_I.get(label, label)),
            _align(word_ids, word_labels, lambda label, b_to_i=b_to_i: label + 1 if label in b_to_i else label),
        ):
            message += (
                " (use the b_to_i you are given: an I- id need not be its B- id + 1, nor B- ids odd,"
                " and this tag set is not the notebook's)"
            )
        elif got == [-100 if w is None else b_to_i.get(word_labels[w], word_labels[w]) for w in word_ids]:
            message += (
                " (the first piece got b_to_i's I- tag too: it keeps its word's label; only later pieces take b_to_i)"
            )
        elif any(w is None and g != -100 for w, g in zip(word_ids, got, strict=True)):
            message += " (a special token or padding got a label: where word_ids gives None, the label is -100)"
        assert got == want, message


# (predictions, labels): padded batches; -100 marks special tokens, later pieces and padding.
ACCURACY_CASES = [
    (
        # 6 right of 8 labelled: 0.75. Every wrong answer named below gives another number here: all positions
        # 0.3333, -100 read as O 0.8889, a mean of the rows' accuracies 0.7222, the non-O labels only (labels > 0)
        # 0.8333, the precision of the non-O predictions 0.7143; so none lands on another's message
        torch.tensor([[0, 3, 4, 0, 0, 0], [0, 1, 1, 2, 0, 0], [0, 3, 1, 0, 0, 0]]),
        torch.tensor([[-100, 3, 4, -100, 0, -100], [-100, 1, 2, 2, -100, -100], [-100, 0, 1, -100, -100, -100]]),
    ),
    (
        torch.tensor([[0, 1, 0, 0, 3, 0, 0, 0], [0, 2, 0, 2, 0, 0, 0, 0]]),  # 6 right of 7: 0.8571
        torch.tensor([[-100, 1, 0, 0, 3, -100, -100, -100], [-100, 1, 0, 2, -100, -100, -100, -100]]),
    ),
]


def _check_labelled_accuracy(labelled_accuracy):
    for case_predictions, case_labels in ACCURACY_CASES:
        _check_one_accuracy(labelled_accuracy, case_predictions, case_labels)


def _check_one_accuracy(labelled_accuracy, case_predictions, case_labels):
    predictions, labels = case_predictions.clone(), case_labels.clone()
    got = labelled_accuracy(predictions, labels)
    assert torch.equal(labels, case_labels) and torch.equal(predictions, case_predictions), (
        "predictions or labels were changed: compute the accuracy without writing into them"
    )
    if isinstance(got, torch.Tensor):
        assert got.numel() == 1, f"return one number, got a tensor of shape {tuple(got.shape)}"
        got = got.item()
    assert isinstance(got, (int, float)), f"return a number, got {type(got).__name__}"
    assert math.isfinite(got), f"expected a finite number, got {got}"
    kept = labels != -100
    want = (predictions[kept] == labels[kept]).float().mean().item()
    all_positions = (predictions == labels).float().mean().item()  # -100 is never predicted
    as_o = (predictions == labels.masked_fill(~kept, 0)).float().mean().item()  # -100 read as "O"
    rows = sum((p[k] == t[k]).float().mean().item() for p, t, k in zip(predictions, labels, kept, strict=True)) / len(
        labels
    )
    non_o = labels > 0
    non_o_only = (predictions[non_o] == labels[non_o]).float().mean().item()
    right = int((predictions[kept] == labels[kept]).sum())
    message = (
        f"for labels {labels.tolist()} expected {want:.4f} ({right} right of {int(kept.sum())} labelled), got {got:.4f}"
    )
    if math.isclose(got, all_positions, abs_tol=1e-4):
        message += (
            f" (that divides by all {labels.numel()} positions: the -100 positions count as wrong,"
            " since no model predicts -100)"
        )
    elif math.isclose(got, as_o, abs_tol=1e-4):
        message += " (that reads -100 as the class 'O': every ignored position predicted 'O' counts as right)"
    elif math.isclose(got, rows, abs_tol=1e-4):
        message += " (that is a mean of the rows' accuracies: each row weighs the same, whatever its labelled count)"
    elif math.isclose(got, non_o_only, abs_tol=1e-4):
        message += " (the O labels (0) were dropped too: select labels != -100, and O is a label like any other)"
    assert math.isclose(got, want, abs_tol=1e-4), message


# (labels, pad id, start id, decoder inputs): T5 uses 0 for both ids; BART pads with 1 and starts with 2 (</s>).
SHIFT_CASES = [
    (torch.tensor([[7, 6, 5, 1], [9, 1, -100, -100]]), 0, 0, [[0, 7, 6, 5], [0, 9, 1, 0]]),
    (torch.tensor([[4, 1, -100]]), 0, 0, [[0, 4, 1]]),
    (torch.tensor([[0, 8, 9, 7, 2], [0, 5, 2, -100, -100]]), 1, 2, [[2, 0, 8, 9, 7], [2, 0, 5, 2, 1]]),
]


def _shift(labels, pad_id, start_id):
    shifted = torch.cat([torch.full_like(labels[:, :1], start_id), labels[:, :-1]], dim=1)
    return shifted.masked_fill(shifted == -100, pad_id)


def _check_decoder_inputs(decoder_inputs):
    for case, pad_id, start_id, want in SHIFT_CASES:
        labels, before = case.clone(), case.clone()
        got = decoder_inputs(labels, pad_id, start_id)
        assert isinstance(got, torch.Tensor), f"return a tensor, got {type(got).__name__}"
        assert torch.equal(labels, before), (
            "labels were changed: the loss still needs their -100; build the decoder inputs in a new tensor"
        )
        assert got.shape == labels.shape, (
            f"decoder inputs have the labels' shape {tuple(labels.shape)}, got {tuple(got.shape)}"
        )
        assert got.dtype == torch.int64, (
            f"decoder inputs are token ids for an embedding lookup: return int64, like the labels, got {got.dtype}"
        )
        message = (
            f"for labels {labels.tolist()}, pad_id {pad_id}, start_id {start_id}: expected {want}, got {got.tolist()}"
        )
        if (got == -100).any():
            message += (
                " (-100 left in the decoder inputs: it is no token id and the embedding lookup fails; use the pad id)"
            )
        elif got[:, :-1].tolist() == labels[:, 1:].masked_fill(labels[:, 1:] == -100, pad_id).tolist():
            message += " (shifted the wrong way: the decoder input at t is the label at t - 1, after a start token)"
        elif pad_id != start_id and got.tolist() == _shift(labels, start_id, pad_id).tolist():
            message += " (pad_id and start_id swapped: the first column holds start_id, and -100 becomes pad_id)"
        elif got.tolist() == _shift(labels, 0, 0).tolist():
            message += " (pad_id and start_id ignored: 0 for both is right only where both are 0, as in T5; use them)"
        elif got.tolist() == _shift(labels, 0, start_id).tolist():
            message += " (-100 became 0, not pad_id: 0 is T5's pad id, right only where the pad id is 0; use pad_id)"
        elif got.tolist() == _shift(labels, pad_id, 0).tolist():
            message += " (the first column is 0, not start_id: 0 is T5's start id, and only right there; use start_id)"
        assert got.tolist() == want, message


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "08-align-all-tokens": (
        _check_align_all_tokens,
        "walk the word_ids: None → -100; a new word id → its label; the same id again → b_to_i.get(label, label)",
    ),
    "08-labelled-accuracy": (
        _check_labelled_accuracy,
        "kept = labels != -100, then compare predictions[kept] with labels[kept]",
    ),
    "08-decoder-inputs": (
        _check_decoder_inputs,
        "a column of start ids, then labels[:, :-1]; then masked_fill where that equals -100 with the pad id",
    ),
}
