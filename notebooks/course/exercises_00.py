"""Notebook 00's exercise checkers (the -1 trick); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs. A blank answer (None, or a function that still returns None) never reaches
a checker: the front door says it is not answered yet.
"""

import math
import numbers

import torch


def _check_predict_the_loss(answer):
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    assert isinstance(answer, numbers.Real) and not isinstance(answer, bool), (
        f"expected a number, got {type(answer).__name__}"
    )
    assert math.isfinite(answer), f"expected a finite number, got {answer}: the loss here is finite"
    assert abs(answer - 2000 / 6) > 0.01, (
        "333.33 is either the gist's number (its 3 kept targets, 1 miss) or 2000 / 6 (all 6 positions, masked "
        "ones included): count the kept targets and the misses here"
    )
    assert abs(answer - 2000) > 0.01, "2000 is the sum of the kept losses; the default reduction is their mean"
    assert abs(answer - 500) < 0.01, f"{answer} is not the loss of these predictions"


def _check_mask_prefix(mask_prefix):
    targets = torch.tensor([9, 1, 3, 7])
    # n = 6: a prompt longer than the text (the text was truncated away); nothing is left to keep
    for n, want in [(2, [-1, -1, 3, 7]), (0, [9, 1, 3, 7]), (4, [-1, -1, -1, -1]), (6, [-1, -1, -1, -1])]:
        got = mask_prefix(targets, n)
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert got.dtype == targets.dtype, f"targets are {targets.dtype} class ids; got a {got.dtype} tensor back"
        assert got.shape == targets.shape, (
            f"mask_prefix([9, 1, 3, 7], {n}) returned {got.tolist()}: keep the targets' length "
            "(n may exceed it: then every target is -1)"
        )
        assert got.tolist() == want, f"mask_prefix([9, 1, 3, 7], {n}) should be {want}, got {got.tolist()}"
        assert targets.tolist() == [9, 1, 3, 7], "the input targets were changed; work on a copy"
        assert got.data_ptr() != targets.data_ptr(), (
            f"mask_prefix([9, 1, 3, 7], {n}) returned the input tensor itself (or a view of it): return a new "
            "tensor (targets.clone()), or a later change to one would change the other"
        )


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "00-predict-the-loss": (_check_predict_the_loss, "count the wrong predictions among the kept targets only"),
    "00-mask-prefix": (_check_mask_prefix, "clone the targets, then assign -1 to the slice [:n]"),
}
