"""Notebook 03's exercise checkers (ignore_index); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs. A blank answer (None, or a function that still returns None) never reaches
a checker: the front door says it is not answered yet.
"""

import math

import torch
import torch.nn.functional as F


def _check_out_of_range(answer):
    cases = [([2, 0, -100, 5, -1], 5, -100), ([2, -1, -1, -2, 4], 5, -1), ([0, 3, 0, -100, 2], 3, 0)]
    cases.append(([[2, -100, 9], [7, 1, -100]], 5, -100))  # a (B, T) batch: the answer keeps its shape
    for target, num_classes, ignore_index in cases:
        t = torch.tensor(target)
        expected = ((t != ignore_index) & ((t < 0) | (t >= num_classes))).tolist()
        got = answer(t, num_classes, ignore_index=ignore_index)
        assert isinstance(got, torch.Tensor), f"expected a bool tensor, got {type(got).__name__}"
        assert got.dtype == torch.bool, f"expected dtype torch.bool (a long mask indexes), got {got.dtype}"
        assert got.tolist() == expected, (
            f"for target {target}, num_classes={num_classes}, ignore_index={ignore_index} "
            f"expected {expected}, got {got.tolist()}"
        )


def _check_masked_mean(answer):
    gen = torch.Generator().manual_seed(3)
    for ignore_index in (-100, -1, 0):
        logits = torch.randn(7, 5, generator=gen)
        target = torch.tensor([3, ignore_index, 1, 4, ignore_index, 2, 0 if ignore_index else 1])
        expected = F.cross_entropy(logits, target, ignore_index=ignore_index).item()
        got = answer(logits, target, ignore_index=ignore_index)
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert math.isclose(got.item(), expected, rel_tol=1e-5), (
            f"for ignore_index={ignore_index} expected {expected:.4f}, got {got.item():.4f}"
        )


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "03-out-of-range": (
        _check_out_of_range,
        "a target is fine when it equals ignore_index or lies in 0..num_classes-1",
    ),
    "03-masked-mean": (
        _check_masked_mean,
        "put any valid id at ignored targets, multiply by the mask, divide by the number kept",
    ),
}
