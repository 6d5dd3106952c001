"""Notebook 09's exercise checkers (debugging masks); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs, naming the mistake where it is a known one (by the tag check_labels gives it).
"""

import torch

from label_checks import check_labels


def _tags(input_ids, labels, attention_mask=None, **options):
    return sorted({f"[{finding.tag}]" for finding in check_labels(input_ids, labels, attention_mask, **options)})


# The exercise's batch (0 pad, 1 <|im_start|>, 2 <|im_end|>, header 1 7) and the labels it should have
FIX_IDS = torch.tensor([[1, 5, 6, 2, 1, 7, 8, 9, 2, 0], [1, 5, 2, 1, 7, 10, 11, 12, 13, 2]])
FIX_MASK = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]])
FIX_WANT = [[-100, -100, -100, -100, -100, -100, 8, 9, 2, -100], [-100, -100, -100, -100, -100, 10, 11, 12, 13, 2]]


def _check_fix_the_batch(fixed):
    assert isinstance(fixed, torch.Tensor), f"expected a tensor of labels, got {type(fixed).__name__}"
    assert fixed.shape == FIX_IDS.shape, f"labels should have the shape of input_ids, (2, 10), got {tuple(fixed.shape)}"
    assert fixed.dtype == torch.long, f"labels should be int64 (torch.long), got {fixed.dtype}"
    if [row[1:] for row in fixed.tolist()] == [row[1:] for row in FIX_WANT]:
        return  # labels[:, 0] is never a target (the model shifts it away): any value there is right
    tags = _tags(FIX_IDS, fixed, FIX_MASK, end_ids=[2], never_train_ids=[0, 1])
    if tags:
        raise AssertionError(f"check_labels still finds {', '.join(tags)} in your labels")
    wrong = [(b, t) for b in range(2) for t in range(1, 10) if fixed[b, t].item() != FIX_WANT[b][t]]
    b, t = wrong[0]
    if fixed[b, t].item() != -100 and FIX_WANT[b][t] == -100:
        raise AssertionError(
            f"row {b}, t={t} (id {FIX_IDS[b, t].item()}) is trained but belongs to the prompt or header"
        )
    raise AssertionError(f"row {b}, t={t} should be {FIX_WANT[b][t]}, got {fixed[b, t].item()}")


def _check_reasoning_labels(reasoning_labels):
    # 1 <|im_start|>, 7 assistant, 6 user, 3 <think>, 4 </think>, 2 <|im_end|>, 0 pad; words 8 and up
    ids = torch.tensor(
        [
            [1, 6, 8, 2, 1, 7, 3, 4, 9, 10, 2, 0, 0, 0],  # no reasoning: the empty block is template text
            [1, 6, 8, 2, 1, 7, 3, 11, 12, 4, 9, 2, 0, 0],  # the model's own reasoning: trained
            [1, 6, 8, 2, 1, 7, 3, 4, 9, 2, 1, 6, 10, 2],  # a user turn after the answer is not trained
            [1, 6, 8, 2, 1, 7, 3, 4, 9, 10, 11, 12, 13, 14],  # cut before its 2: trained to the row's end
        ]
    )
    want = [
        [-100, -100, -100, -100, -100, -100, -100, -100, 9, 10, 2, -100, -100, -100],
        [-100, -100, -100, -100, -100, -100, 3, 11, 12, 4, 9, 2, -100, -100],
        [-100, -100, -100, -100, -100, -100, -100, -100, 9, 2, -100, -100, -100, -100],
        [-100, -100, -100, -100, -100, -100, -100, -100, 9, 10, 11, 12, 13, 14],
    ]
    before = ids.clone()
    got = reasoning_labels(ids)
    assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
    assert torch.equal(ids, before), "input_ids were changed: build the labels in a new tensor"
    assert got.shape == ids.shape, (
        f"labels should have the shape of input_ids, {tuple(ids.shape)}, got {tuple(got.shape)}"
    )
    assert got.dtype == torch.long, f"labels should be int64 (torch.long), got {got.dtype}"
    for b, (row, wanted) in enumerate(zip(got.tolist(), want, strict=True)):
        if row == wanted:
            continue
        if row[1:] == wanted[:-1] or row[:-1] == wanted[1:]:
            raise AssertionError(f"row {b} is shifted by one: labels line up with input_ids; the model shifts them")
        if b != 1 and row[6:8] == [3, 4]:
            raise AssertionError(f"row {b}: the empty <think></think> block (ids 3 4) is trained; it is template text")
        if b == 1 and row[6] == -100:
            raise AssertionError("row 1: the model's own reasoning block (3 11 12 4) should be trained")
        if 2 not in wanted:
            raise AssertionError(
                f"row {b}: a turn cut before its end token 2 is still the model's own text: train it to the row's end"
            )
        end = wanted.index(2)
        if row[end] != 2:
            raise AssertionError(f"row {b}: the end token 2 at t={end} is not trained; the model would never stop")
        if row[5] != -100 or row[4] != -100:
            raise AssertionError(f"row {b}: the header 1 7 is trained; it is written by the template")
        raise AssertionError(f"row {b}: expected {wanted}, got {row}")


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "09-fix-the-batch": (
        _check_fix_the_batch,
        "read each finding: train each answer's words and its end token 2; padding (attention_mask 0) is -100",
    ),
    "09-reasoning-labels": (
        _check_reasoning_labels,
        "walk each row after a `1 7` header up to its 2; skip a 3 directly followed by 4, and that 4",
    ),
}
