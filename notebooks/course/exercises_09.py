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


# Exercise 2's batch: 1 <|im_start|>, 7 assistant, 6 user, 3 <think>, 4 </think>, 2 <|im_end|>, 0 pad; words 8 and up
REASONING_IDS = [
    [1, 6, 8, 2, 1, 7, 3, 4, 9, 10, 2] + [0] * 13,  # no reasoning: the empty block is template text
    [1, 6, 8, 2, 1, 7, 3, 11, 12, 4, 9, 2] + [0] * 12,  # the model's own reasoning: trained
    [1, 6, 8, 2, 1, 7, 3, 4, 9, 2, 1, 6, 10, 2] + [0] * 10,  # a user turn after the answer is not trained
    [1, 6, 8, 2, 1, 7, 3, 4, *range(9, 25)],  # cut before its 2 (the longest row): trained to the row's end
    [1, 6, 8, 2, 1, 7, 3, 11, 4, 9, 2, 1, 6, 7, 10, 2, 1, 7, 3, 4, 12, 2, 0, 0],  # two answers; a user writes 7
    [1, 6, 8, 2, 1, 7, 9, 10, 11, 12] + [0] * 14,  # cut before its 2, then padded: the padding is not trained
]
_ = -100
REASONING_WANT = [
    [_, _, _, _, _, _, _, _, 9, 10, 2] + [_] * 13,
    [_, _, _, _, _, _, 3, 11, 12, 4, 9, 2] + [_] * 12,
    [_, _, _, _, _, _, _, _, 9, 2, _, _, _, _] + [_] * 10,
    [_, _, _, _, _, _, _, _, *range(9, 25)],
    [_, _, _, _, _, _, 3, 11, 4, 9, 2, _, _, _, _, _, _, _, _, _, 12, 2, _, _],
    [_, _, _, _, _, _, 9, 10, 11, 12] + [_] * 14,
]


def _reasoning_mistake(b, t, row, wanted, tokens):
    """What is wrong at t, the first position of row b whose label differs from the wanted one."""
    headers = [h for h in range(1, len(tokens)) if tokens[h - 1 : h + 1] == [1, 7]]  # where each `1 7` ends
    turn = [h for h in headers if h < t]
    if wanted[t] == -100:  # trained, and should not be
        if tokens[t] == 0 and turn and 2 not in tokens[turn[-1] : t]:
            return f"row {b}, t={t}: padding after a turn cut by truncation is trained; padding is never trained"
        if tokens[t] == 0:
            return f"row {b}, t={t}: padding (id 0) is trained; a turn ends at its 2, and padding is never trained"
        if tokens[t : t + 2] == [1, 7] or tokens[t - 1 : t + 1] == [1, 7]:
            return f"row {b}: the header 1 7 is trained; it is written by the template"
        if tokens[t : t + 2] == [3, 4]:
            return f"row {b}: the empty <think></think> block (ids 3 4) is trained; it is template text"
        if tokens[t - 1 : t + 1] == [3, 4] and row[t - 1] == -100:
            return f"row {b}, t={t}: the 4 of an empty block is trained though its 3 is not: skip both ids of `3 4`"
        user = max(
            (k for k in range(t) if tokens[k] == 2), default=0
        )  # the answer's end, or the end of the user turn before
        if 7 in tokens[user:t] and not any(user < h < t for h in headers):
            return f"row {b}, t={t}: a 7 in a user's text opened a turn: the header is `1 7`, both ids, not 7 alone"
        return f"row {b}, t={t}: trained after the answer's 2: a user turn is not the model's text; stop at the 2"
    if len(turn) >= 2 and all(row[k] == -100 for k in range(turn[-1] + 1, len(row)) if wanted[k] != -100):
        return f"row {b}: the second assistant turn (after the second `1 7`, t={turn[-1]}) is not trained"
    if tokens[t] == 2:
        return f"row {b}: the end token 2 at t={t} is not trained; the model would never stop"
    if b == 1 and row[6] == -100:
        return "row 1: the model's own reasoning block (3 11 12 4) should be trained"
    if 2 not in tokens[turn[-1] :]:
        return f"row {b}: a turn cut before its end token 2 is still the model's own text: train it to the row's end"
    return f"row {b}: expected {wanted}, got {row}"


def _check_reasoning_labels(reasoning_labels):
    ids = torch.tensor(REASONING_IDS)
    before = ids.clone()
    got = reasoning_labels(ids)
    assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
    assert torch.equal(ids, before), "input_ids were changed: build the labels in a new tensor"
    assert got.shape == ids.shape, (
        f"labels should have the shape of input_ids, {tuple(ids.shape)}, got {tuple(got.shape)}"
    )
    assert got.dtype == torch.long, f"labels should be int64 (torch.long), got {got.dtype}"
    assert ((got == -100) | (got >= 0)).all(), (
        f"labels hold {got[(got != -100) & (got < 0)].unique().tolist()}: cross_entropy ignores only -100 "
        "(ignore_index) and raises on another negative target: use -100 for every ignored position"
    )
    for b, (row, wanted, tokens) in enumerate(zip(got.tolist(), REASONING_WANT, REASONING_IDS, strict=True)):
        if row == wanted:
            continue
        if row[1:] == wanted[:-1] or row[:-1] == wanted[1:]:
            raise AssertionError(f"row {b} is shifted by one: labels line up with input_ids; the model shifts them")
        t = next(t for t, (y, w) in enumerate(zip(row, wanted, strict=True)) if y != w)
        raise AssertionError(_reasoning_mistake(b, t, row, wanted, tokens))


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "09-fix-the-batch": (
        _check_fix_the_batch,
        "read each finding: train each answer's words and its end token 2; padding (attention_mask 0) is -100",
    ),
    "09-reasoning-labels": (
        _check_reasoning_labels,
        "walk each row; after every `1 7` header, train up to its 2; skip a 3 directly followed by 4, and that 4",
    ),
}
