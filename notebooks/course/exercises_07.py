"""Notebook 07's exercise checkers (Masked losses at scale); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs. A blank answer (None, or a function that still returns None) never reaches
a checker: the front door says it is not answered yet.
"""

import torch
import torch.nn.functional as F


def _check_rank_loss(answer):
    gen = torch.Generator().manual_seed(7)
    weight = torch.randn(4, 3, generator=gen, requires_grad=True)
    bias = torch.zeros(4, requires_grad=True)
    # [1, 0] and [0, 1, 0, 1] keep fewer targets than there are ranks (0 < K < W)
    for kept in ([3, 5], [2, 0], [1, 4, 0, 2], [0, 0], [1, 0], [0, 1, 0, 1]):  # kept targets per rank
        world = len(kept)
        inputs = torch.randn(world, 6, 3, generator=gen)
        targets = torch.randint(0, 4, (world, 6), generator=gen)
        targets = targets.masked_fill(torch.arange(6) >= torch.tensor(kept)[:, None], -100)
        count = (targets != -100).sum()
        logits = [inputs[r] @ weight.T + bias for r in range(world)]
        losses = [answer(logits[r], targets[r], count, world) for r in range(world)]
        assert all(isinstance(loss, torch.Tensor) and loss.numel() == 1 for loss in losses), "return a scalar tensor"
        case = f"with kept targets per rank {kept}"
        assert all(torch.isfinite(loss) for loss in losses), f"{case} a rank's loss is not finite: guard the count"
        for r, (loss, out) in enumerate(zip(losses, logits, strict=True)):
            grad = (
                torch.autograd.grad(loss, out, retain_graph=True, allow_unused=True)[0] if loss.requires_grad else None
            )
            assert grad is not None, (
                f"{case} rank {r}'s loss does not go through the logits: every rank, even one with nothing kept, "
                "must backprop a loss computed from the model's output (a sum over no targets is 0 with a graph), "
                "or DDP's hooks never fire and that rank joins no all-reduce (section 3)"
            )
        per_rank = [torch.autograd.grad(loss, (weight, bias), allow_unused=True) for loss in losses]
        ddp = [sum(g[i] if g[i] is not None else 0 for g in per_rank) / world for i in range(2)]  # DDP averages
        full = F.cross_entropy(inputs.reshape(-1, 3) @ weight.T + bias, targets.flatten(), reduction="sum")
        want = torch.autograd.grad(full / count.clamp(min=1), (weight, bias))
        assert all(torch.isfinite(torch.as_tensor(g)).all() for g in ddp), f"{case} the gradients hold nan"
        if 0 < count < world and all(
            torch.allclose(g, w * count / world, atol=1e-6) for g, w in zip(ddp, want, strict=True)
        ):
            raise AssertionError(
                f"{case} the averaged gradients are K/W = {int(count)}/{world} of the token mean's: with fewer kept "
                "targets than ranks, (global_count / world_size).clamp(min=1) lifts K/W up to 1; clamp the count "
                "itself, then multiply by world_size"
            )
        if count > 0 and all(torch.allclose(g * world, w, atol=1e-6) for g, w in zip(ddp, want, strict=True)):
            raise AssertionError(f"{case} the averaged gradients are world_size times too small (DDP averages)")
        if not all(torch.allclose(torch.as_tensor(g), w, atol=1e-6) for g, w in zip(ddp, want, strict=True)):
            own = [  # the table's `own mean`: each rank's sum over its own kept count, then DDP's average
                torch.autograd.grad(
                    F.cross_entropy(inputs[r] @ weight.T + bias, targets[r], reduction="sum") / max(kept[r], 1),
                    (weight, bias),
                )
                for r in range(world)
            ]
            own = [sum(g[i] for g in own) / world for i in range(2)]
            for scale, times in ((1, ""), (world, ", times world_size")):
                if all(torch.allclose(torch.as_tensor(g), o * scale, atol=1e-6) for g, o in zip(ddp, own, strict=True)):
                    raise AssertionError(
                        f"{case} each rank divides by its own count (the table's `own mean`{times}), and DDP averages "
                        "those means: divide every rank's sum by global_count (clamped to at least 1) and multiply "
                        "by world_size"
                    )
            raise AssertionError(f"{case} DDP's averaged gradients differ from the whole batch's token mean")


_PRODUCTS = {"matmul", "__matmul__", "__rmatmul__", "mm", "addmm", "bmm", "baddbmm", "linear", "einsum", "tensordot"}
_PRODUCTS |= {"inner"}  # torch.inner(hidden, weight) is hidden @ weight.T


class _Projections(torch.overrides.TorchFunctionMode):
    """Records the rows of every matrix product with a vocabulary-sized dimension (logits, or their transpose),
    and whether one of them was recorded for a backward pass (gradients on: autograd keeps what it needs);
    and the rows of the largest tensor of any kind with a vocabulary-sized dimension (logits, log-probabilities,
    or chunks of them put back together)."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab, self.rows, self.with_grad, self.widest = vocab, [], False, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if isinstance(out, torch.Tensor) and self.vocab in out.shape:
            self.widest = max(self.widest, out.numel() // self.vocab)
            if name in _PRODUCTS:
                self.rows.append(out.numel() // self.vocab)
                self.with_grad |= out.requires_grad
        return out


def _check_chunked_eval_loss(answer):
    gen = torch.Generator().manual_seed(8)
    vocab, chunk = 50, 3
    for kept in (torch.tensor([1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1]).bool(), torch.zeros(11, dtype=torch.bool)):
        # hidden size 3, not above chunk: weight.T, a (hidden size) x vocabulary tensor, is no larger than a chunk
        hidden = torch.randn(11, chunk, generator=gen).requires_grad_()  # as a model's: they require gradients
        weight = torch.randn(vocab, chunk, generator=gen).requires_grad_()
        targets = torch.randint(0, vocab, (11,), generator=gen).masked_fill(~kept, -100)
        probe = _Projections(vocab)
        with probe:
            loss = answer(hidden, weight, targets, chunk)
        n = int(kept.sum())
        case = f"with {n} kept targets"
        assert isinstance(loss, torch.Tensor) and loss.numel() == 1, f"{case}, return a scalar tensor"
        with torch.no_grad():
            want = F.cross_entropy(hidden @ weight.T, targets, reduction="sum") / max(n, 1)
            chunks = zip(hidden[kept].split(chunk), targets[kept].split(chunk), strict=True)
            mean_of_means = torch.stack([F.cross_entropy(h @ weight.T, y) for h, y in chunks]).mean()
        if n == 0:
            assert torch.isfinite(loss), (
                f"{case} your loss is {loss.item()}: guard the count (and if you score the chunks with "
                "reduction='mean': an empty tensor still splits into one empty chunk, whose 'mean' is nan; use "
                "reduction='sum')"
            )
        assert torch.isfinite(loss), f"{case} your loss is {loss.item()}: guard the count"
        if torch.allclose(loss, mean_of_means, atol=1e-5) and not torch.allclose(loss, want, atol=1e-5):
            raise AssertionError(
                f"{case} your loss is {loss.item():.4f}, the mean of the chunks' means: chunks of "
                f"{[len(y) for y in targets[kept].split(chunk)]} kept rows then weigh alike; add up the chunks' summed "
                f"losses and divide by the kept count (the token mean is {want.item():.4f})"
            )
        assert torch.allclose(loss, want, atol=1e-5), (
            f"{case} your loss is {loss.item():.4f}; the token mean is {want.item():.4f}"
        )
        assert loss.grad_fn is None, f"{case} your loss carries a graph for gradients: compute it under torch.no_grad()"
        assert not probe.with_grad, (
            f"{case} a projection ran with gradients on: until the loss was detached, autograd kept every chunk's "
            "log-probabilities (kept rows x vocabulary) for a backward pass that never comes; wrap the loop in "
            "torch.no_grad(), .detach() at the end is too late"
        )
        assert max(probe.rows, default=0) <= chunk, (
            f"one projection covers {max(probe.rows)} rows, more than chunk_size"
        )
        assert probe.widest <= chunk, (
            f"{case} a tensor of {probe.widest} rows x the vocabulary was built (torch.cat of the chunks' logits or "
            "log-probabilities?): it holds the scores of all those rows at once, which chunking is meant to avoid; "
            "score each chunk and add up the chunks' summed losses"
        )
        assert probe.rows or n == 0, (
            f"{case} the checker saw no matrix product with a vocabulary-sized output; compute the logits with "
            "hidden @ weight.T (or matmul, mm, F.linear, einsum, tensordot, inner)"
        )
        assert sum(probe.rows) == n, f"{sum(probe.rows)} rows were projected, but only {n} are kept: select them first"


def _check_loss_with_z(answer):
    gen = torch.Generator().manual_seed(9)
    target = torch.tensor([1, -100, -100, -100, 3, 0, 2, -100, 1])  # micro-batches keep 1, 0 and 4 targets
    parts = ((0, 1), (1, 4), (4, 9))
    large = torch.randn(9, 5, generator=gen)
    large[target == -100] += 40.0  # padding rows: large logits that no target constrains
    filled = large.detach().clone()
    filled[target == -100] = torch.finfo(torch.float32).min  # padding rows filled as notebook 03 fills them
    cases = (
        (1e-4, target, large),
        (1e-2, target, large),
        (1e-4, torch.full((9,), -100), large),
        (1e-4, target, filled),
    )
    for z_weight, labels, values in cases:
        logits = values.clone().requires_grad_()
        kept = labels != -100
        num_items = kept.sum()
        got = [answer(logits[a:b], labels[a:b], num_items, z_weight) for a, b in parts]
        assert all(isinstance(g, torch.Tensor) and g.numel() == 1 for g in got), "return a scalar tensor"
        total = sum(got)
        padding = "finfo.min" if values is filled else "large logits"
        case = f"with z_weight={z_weight}, {int(num_items)} kept targets and padding rows of {padding}"
        with torch.no_grad():
            ce = F.cross_entropy(logits, labels, reduction="sum") / num_items.clamp(min=1)
            z2 = logits.logsumexp(dim=-1).pow(2)
            z_kept = logits[kept].logsumexp(dim=-1).pow(2).sum()
            want = ce + z_weight * z_kept / num_items.clamp(min=1)
            wrong = {  # what common slips give, as the z-loss part of the sum
                "averaged over all 9 positions (mask, then .mean())": z_kept / 9,
                "averaged over each micro-batch's own rows (mask, then .mean(), per micro-batch)": sum(
                    logits[a:b][kept[a:b]].logsumexp(dim=-1).pow(2).sum() / (b - a) for a, b in parts
                ),
                "taken over every row, padding included": z2.sum() / num_items.clamp(min=1),
                "divided by each micro-batch's own kept count, a local denominator: divide it by num_items, the "
                "whole batch's kept count, as the cross-entropy": sum(
                    logits[a:b][kept[a:b]].logsumexp(dim=-1).pow(2).sum() / kept[a:b].sum().clamp(min=1)
                    for a, b in parts
                ),
            }
        if torch.isnan(total) and num_items > 0 and values is filled:
            raise AssertionError(
                f"{case} the sum is nan: a row of finfo.min has z² = inf, and inf × 0 = nan; select the kept rows "
                "before logsumexp"
            )
        if torch.isnan(total) and num_items > 0:
            raise AssertionError(f"{case} the sum is nan: a micro-batch with no kept target must not take its own mean")
        assert torch.isfinite(total), f"{case} the sum is {total.item()}: guard num_items"
        z_part = (total.detach() - ce) / z_weight
        for name, value in wrong.items():
            if (
                num_items > 0
                and torch.isclose(z_part, value, rtol=1e-2)
                and not torch.isclose(value, z_kept / num_items)
            ):
                raise AssertionError(f"{case} your z-loss is {name}")
        assert torch.allclose(total, want, atol=1e-6, rtol=1e-6), (
            f"{case} your losses add up to {total.item():.6f}; cross-entropy mean plus z-loss: {want.item():.6f}"
        )
        grad, want_grad = (
            torch.autograd.grad(total, logits),
            torch.autograd.grad(
                F.cross_entropy(logits, labels, reduction="sum") / num_items.clamp(min=1)
                + z_weight * logits[kept].logsumexp(dim=-1).pow(2).sum() / num_items.clamp(min=1),
                logits,
            ),
        )
        assert not grad[0].isnan().any(), (
            f"{case} your loss is right but its gradient holds nan: torch.where(kept, z², 0) still "
            "backpropagates through z² = inf on the rows it discards, and 0 × inf = nan; select the kept rows "
            "before logsumexp"
        )
        assert torch.allclose(grad[0], want_grad[0], atol=1e-6), f"{case} the losses match but the gradients do not"


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "07-rank-loss": (_check_rank_loss, "DDP averages the ranks' gradients: see the table of section 1"),
    "07-chunked-eval-loss": (
        _check_chunked_eval_loss,
        "build the mask from targets, select the kept rows first (section 6), then split",
    ),
    "07-loss-with-z": (
        _check_loss_with_z,
        "the z-loss takes the same kept rows and the same denominator as the cross-entropy (section 8)",
    ),
}
