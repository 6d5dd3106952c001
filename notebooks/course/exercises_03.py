"""Notebook 03's exercise checkers (ignore_index); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs. A blank answer (None, or a function that still returns None) never reaches
a checker: the front door says it is not answered yet.
"""

import contextlib
import inspect
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


@contextlib.contextmanager
def _ignore_index_arguments():
    """While active, F.cross_entropy and F.nll_loss (which nn.CrossEntropyLoss and nn.NLLLoss call) record
    each call's ignore_index (the default -100 included), target and reduction in the list it yields."""
    given, originals = [], {name: getattr(F, name) for name in ("cross_entropy", "nll_loss")}

    def recording(name, original):
        signature = inspect.signature(original)

        def loss(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            arguments = bound.arguments
            given.append(
                (name, arguments.get("ignore_index", -100), arguments["target"], arguments.get("reduction", "mean"))
            )
            return original(*args, **kwargs)

        return loss

    for name, original in originals.items():
        setattr(F, name, recording(name, original))
    try:
        yield given
    finally:
        for name, original in originals.items():
            setattr(F, name, original)


def _check_masked_mean(answer):
    gen = torch.Generator().manual_seed(3)
    for ignore_index in (-100, -1, 0):
        logits = torch.randn(7, 5, generator=gen).requires_grad_()
        target = torch.tensor([3, ignore_index, 1, 4, ignore_index, 2, 0 if ignore_index else 1])
        expected = F.cross_entropy(logits, target, ignore_index=ignore_index)
        with _ignore_index_arguments() as given:
            got = answer(logits, target, ignore_index=ignore_index)
        passed_on = [name for name, value, _, _ in given if value == ignore_index != -100]
        assert not passed_on, (
            f"masked_cross_entropy passed ignore_index={ignore_index} on to F.{passed_on[0]}, which then skipped "
            "those targets for you: the exercise is to skip them with a mask, without passing ignore_index"
        )
        # a call that skips targets itself: its target holds its own ignore_index and it reduces (with the sentinel
        # -100 this looks like passing ignore_index on, which the -1 and 0 cases name above)
        skipped = [
            (name, value, reduction)
            for name, value, called_target, reduction in given
            if ignore_index != -100
            and reduction != "none"
            and isinstance(called_target, torch.Tensor)
            and (called_target == value).any()
        ]
        assert not skipped, (
            f"masked_cross_entropy called F.{skipped[0][0]} with reduction={skipped[0][2]!r} on a target that holds "
            f"{skipped[0][1]}, that call's ignore_index, so the loss skipped those targets for you: the exercise is "
            "to skip them with a mask (reduction='none', or select the kept rows first)"
        )
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert math.isclose(got.item(), expected.item(), rel_tol=1e-5), (
            f"for ignore_index={ignore_index} expected {expected.item():.4f}, got {got.item():.4f}"
        )
        assert got.requires_grad, (
            "the loss has no gradient back to the logits (was it built with .item(), .detach() or torch.tensor?): "
            "a loss that cannot be backpropagated cannot train"
        )
        got_grad, expected_grad = (torch.autograd.grad(loss, logits)[0] for loss in (got, expected))
        assert torch.allclose(got_grad, expected_grad, atol=1e-6), (
            f"for ignore_index={ignore_index} the value is right but the gradient on the logits is not "
            "F.cross_entropy's: ignored rows must get exactly zero"
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
