"""Notebook 04's exercise checkers (reduction modes); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs. A blank answer (None, or a function that still returns None) never reaches
a checker: the front door says it is not answered yet.
"""

import math

import torch
import torch.nn.functional as F


def _check_guarded_mean(answer):
    losses = torch.tensor([[1.0, 2.0, 7.0], [3.0, 5.0, 9.0]])
    for mask, want in [([[1, 1, 0], [1, 0, 0]], 2.0), ([[0, 0, 0]] * 2, 0.0), ([[1, 1, 1]] * 2, 4.5)]:
        got = answer(losses, torch.tensor(mask, dtype=torch.bool))
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        message = f"for mask {mask} expected {want:.4f}, got {got.item():.4f}"
        kept = torch.tensor(mask, dtype=torch.bool)
        if kept.any():
            rows = kept.any(1)
            row_means = (losses * kept).sum(1)[rows] / kept.sum(1)[rows]
            if abs(got.item() - want) >= 1e-5 and abs(got.item() - row_means.mean().item()) < 1e-5:
                message += ": that is the mean of the rows' means; divide the sum of all kept losses by their count"
            if abs(got.item() - want) >= 1e-5 and abs(got.item() - (losses * kept).mean().item()) < 1e-5:
                message += ": that divides by every position, masked-out ones too; divide by the kept count"
        assert abs(got.item() - want) < 1e-5, message


def _check_weighted_mean(answer):
    logits, weight = torch.randn(6, 3, generator=torch.Generator().manual_seed(4)), torch.tensor([0.5, 2, 3])
    right = logits.clone()
    right[0] = torch.tensor([0.0, 0.0, 1000.0])  # row 0 predicts class 2 at score 1000: its loss is exactly 0
    cases = (
        ([0, 1, 2, 2, 1, 0], -100, logits),
        ([2, -100, 0, -100, 2, 1], -100, logits),
        ([2, -1, 0, -1, 2, 1], -1, logits),
    )
    cases += (([2, 0, 1, 0, 2, 1], 0, logits),)  # the sentinel is a real class id, as a pad id can be
    cases += (([2, -100, 0, -100, 2, 1], -100, right),)  # a kept target predicted right: loss 0, weight counted
    cases = tuple((*case, weight) for case in cases)
    cases += (([2, -100, 0, -100, 2, 1], -100, logits, weight / 100),)  # kept weights sum to 0.085, below 1
    for ids, ignore, scores, weight in cases:
        target = torch.tensor(ids)
        losses = F.cross_entropy(scores, target, weight=weight, ignore_index=ignore, reduction="none")
        want = F.cross_entropy(scores, target, weight=weight, ignore_index=ignore).item()
        got = answer(losses, target, weight, ignore)
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        case = f"for targets {ids}, weight {[round(w, 4) for w in weight.tolist()]} and ignore_index={ignore}"
        if scores is right:
            case += " (position 0 predicts its target 2 at score 1000, so its loss is 0)"
        kept = target != ignore
        if abs(got.item() - losses.sum().item() / kept.sum().item()) < 1e-5:
            case += ": that divides by the number of kept targets, not by the sum of their weights"
        nonzero = losses != 0
        if (
            abs(got.item() - want) >= 1e-5
            and abs(got.item() - losses.sum().item() / weight[target[nonzero]].sum().item()) < 1e-5
        ):
            case += (
                ": that finds the kept targets by a non-zero loss, but a kept target predicted right has a loss of "
                "0 and its weight still counts; find them with target != ignore_index"
            )
        kept_weight = weight[target[kept]].sum().item()
        if 0 < kept_weight < 1 and abs(got.item() - losses.sum().item()) < 1e-5:
            case += (
                f": that lifts the sum of the kept weights to at least 1 (clamp(min=1)), but here it is "
                f"{kept_weight:.3f}, a real denominator below 1; guard only 0 (section 7)"
            )
        assert abs(got.item() - want) < 1e-5, f"{case}; expected {want:.4f}, got {got.item():.4f}"


def _check_micro_batch_loss(answer):
    logits = torch.randn(9, 4, generator=torch.Generator().manual_seed(5), requires_grad=True)
    target = torch.tensor([1, -100, -100, -100, 3, 0, 2, -100, 1])  # micro-batches keep 1, 0 and 4 targets
    parts = [answer(logits[a:b], target[a:b], (target != -100).sum()) for a, b in ((0, 1), (1, 4), (4, 9))]
    assert all(isinstance(p, torch.Tensor) for p in parts), "expected a tensor from every micro-batch"
    assert all(p.requires_grad for p in parts), "return a loss autograd can follow back to the logits (no .detach())"
    got, full = sum(parts), F.cross_entropy(logits, target)
    message = f"losses add up to {got.item():.4f}, not {full.item():.4f}"
    if math.isnan(got.item()):
        message += " (a micro-batch with 0 kept targets gives nan under 'mean')"
    assert abs(got.item() - full.item()) < 1e-5, message
    grads = torch.autograd.grad(got, logits)[0], torch.autograd.grad(full, logits)[0]
    assert torch.allclose(*grads, atol=1e-6), "the losses match the full batch, the gradients do not"
    # A batch that keeps nothing at all: num_items is 0, and the loss must be 0 with a zero gradient.
    nothing = torch.full((9,), -100)
    num_items = (nothing != -100).sum()
    parts = [answer(logits[a:b], nothing[a:b], num_items) for a, b in ((0, 1), (1, 4), (4, 9))]
    assert all(isinstance(p, torch.Tensor) for p in parts), "expected a tensor from every micro-batch"
    empty = sum(parts)
    if math.isnan(empty.item()):
        raise AssertionError(
            "when no micro-batch keeps a target, num_items is 0 and the summed loss / num_items is 0 / 0 = nan: "
            "guard the global count, num_items.clamp(min=1)"
        )
    assert empty.item() == 0, f"when no micro-batch keeps a target, expected a loss of 0, got {empty.item():.4f}"
    if empty.requires_grad:
        (grad,) = torch.autograd.grad(empty, logits)
        assert (grad == 0).all(), "when no micro-batch keeps a target, the gradient must be 0"


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "04-guarded-mean": (_check_guarded_mean, "keep only masked-in losses (others may be nonzero); never divide by 0"),
    "04-weighted-mean": (
        _check_weighted_mean,
        "divide the summed losses by the weights of the kept targets; select those targets before indexing weight",
    ),
    "04-micro-batch-loss": (
        _check_micro_batch_loss,
        "a micro-batch's 'mean' divides by its own kept count, not num_items; and num_items can be 0",
    ),
}
