"""Notebook 07's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import torch
import torch.nn.functional as F

from course.exercises import run_check


def _z_parts(logits, targets):
    kept = targets != -100
    return kept, F.cross_entropy(logits, targets, reduction="sum")


def test_07_loss_with_z_names_olmos_mean_over_every_row():
    def olmo(logits, targets, num_items, z_weight=1e-4):
        kept, ce = _z_parts(logits, targets)
        return ce / num_items.clamp(min=1) + z_weight * (logits.logsumexp(dim=-1).pow(2) * kept).mean()

    passed, message = run_check("07-loss-with-z", olmo)
    assert not passed and "per micro-batch" in message


def test_07_loss_with_z_says_why_a_row_of_finfo_min_gives_nan():
    def multiply_by_mask(logits, targets, num_items, z_weight=1e-4):
        kept, ce = _z_parts(logits, targets)
        return (ce + z_weight * (logits.logsumexp(dim=-1).pow(2) * kept).sum()) / num_items.clamp(min=1)

    passed, message = run_check("07-loss-with-z", multiply_by_mask)
    assert not passed and "select the kept rows before logsumexp" in message


def test_07_chunked_eval_loss_wants_no_gradient_graph():
    def with_graph(hidden, weight, targets, chunk_size):
        mask = targets != -100
        total = sum(
            F.cross_entropy(h @ weight.T, y, reduction="sum")
            for h, y in zip(hidden[mask].split(chunk_size), targets[mask].split(chunk_size), strict=True)
        )
        return torch.as_tensor(total) / mask.sum().clamp(min=1)

    passed, message = run_check("07-chunked-eval-loss", with_graph)
    assert not passed and "torch.no_grad()" in message


def test_07_rank_loss_catches_clamping_the_count_per_rank():
    # (K / W).clamp(min=1) is right whenever K >= W; with fewer kept targets than ranks it lifts K / W to 1.
    def clamp_per_rank(logits, targets, global_count, world_size):
        summed = F.cross_entropy(logits, targets, reduction="sum")
        return summed / (global_count / world_size).clamp(min=1)

    passed, message = run_check("07-rank-loss", clamp_per_rank)
    assert not passed and "K/W = 1/2" in message and "clamp the count itself" in message


def test_07_rank_loss_passes_the_solution():
    def rank_loss(logits, targets, global_count, world_size):
        return F.cross_entropy(logits, targets, reduction="sum") * world_size / global_count.clamp(min=1)

    passed, message = run_check("07-rank-loss", rank_loss)
    assert passed, message


def _chunked(project):
    """A right chunked evaluation loss whose logits come from project(h, weight)."""

    def chunked_eval_loss(hidden, weight, targets, chunk_size):
        mask = targets != -100
        total = torch.zeros(())
        with torch.no_grad():
            for h, y in zip(hidden[mask].split(chunk_size), targets[mask].split(chunk_size), strict=True):
                total += F.cross_entropy(project(h, weight), y, reduction="sum")
        return total / mask.sum().clamp(min=1)

    return chunked_eval_loss


def test_07_chunked_eval_loss_accepts_logits_computed_transposed():
    passed, message = run_check("07-chunked-eval-loss", _chunked(lambda h, w: (w @ h.T).T))
    assert passed, message


def test_07_chunked_eval_loss_accepts_logits_computed_with_tensordot():
    passed, message = run_check("07-chunked-eval-loss", _chunked(lambda h, w: torch.tensordot(h, w, dims=([1], [1]))))
    assert passed, message


def test_07_chunked_eval_loss_catches_projecting_every_row():
    def every_row(hidden, weight, targets, chunk_size):
        with torch.no_grad():
            total = sum(
                F.cross_entropy(h @ weight.T, y, reduction="sum")
                for h, y in zip(hidden.split(chunk_size), targets.split(chunk_size), strict=True)
            )
        return torch.as_tensor(total) / (targets != -100).sum().clamp(min=1)

    passed, message = run_check("07-chunked-eval-loss", every_row)
    assert not passed and "select them first" in message


def test_07_loss_with_z_names_the_nan_gradient_of_torch_where():
    # The natural fix of the mask-multiply slip: the loss is finite, its gradient is not.
    def with_where(logits, targets, num_items, z_weight=1e-4):
        kept, ce = _z_parts(logits, targets)
        z2 = torch.where(kept, logits.logsumexp(dim=-1).pow(2), 0)
        return (ce + z_weight * z2.sum()) / num_items.clamp(min=1)

    passed, message = run_check("07-loss-with-z", with_where)
    assert not passed and "gradient holds nan" in message and "torch.where" in message


def test_07_rank_loss_catches_a_detached_zero_on_an_empty_rank():
    # Numerically harmless, but no DDP hook fires on that rank, so it joins no all-reduce (section 3).
    def detached_zero(logits, targets, global_count, world_size):
        if not (targets != -100).any():
            return torch.zeros((), requires_grad=True)
        return F.cross_entropy(logits, targets, reduction="sum") * world_size / global_count.clamp(min=1)

    passed, message = run_check("07-rank-loss", detached_zero)
    assert not passed and "does not go through the logits" in message and "section 3" in message


def test_07_loss_with_z_names_the_local_denominator():
    def local_z_mean(logits, targets, num_items, z_weight=1e-4):
        kept, ce = _z_parts(logits, targets)
        z2 = logits[kept].logsumexp(dim=-1).pow(2).sum() / kept.sum().clamp(min=1)
        return ce / num_items.clamp(min=1) + z_weight * z2

    passed, message = run_check("07-loss-with-z", local_z_mean)
    assert not passed and "own kept count" in message and "num_items" in message
