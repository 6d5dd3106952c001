"""Notebook 11's exercise checkers (Masks across parallel dimensions); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own, with simulated ranks in this process (no
process is started): a framework's gradient reduction is a sum of the ranks' gradients divided by its
factor; a pipeline schedule is its loop over micro-batches (``torch.distributed.pipelining``'s semantics:
``loss_fn`` once per micro-batch, then the gradients divided by ``n_microbatches`` when ``scale_grads``);
tensor-parallel ranks are threads whose ``all_reduce`` meets at a barrier. It raises AssertionError with a
message that says what differs, and names the classic mistakes.
"""

import threading

import torch
import torch.nn.functional as F

from course.exercises import NotAnswered


def _scale_case(kept, factor, gen):
    """Random gradients of each (dp, cp) shard's summed loss, and the token mean's gradient. A shard that keeps
    nothing has a summed loss of 0 and a zero gradient, as in training: any finite scale is right for it."""
    dp, cp, _ = kept.shape
    grads = torch.randn(dp, cp, 6, generator=gen, dtype=torch.float64) * (kept[:, :, :1] > 0)
    count = kept[:, :, 0].sum().clamp(min=1)
    return grads, grads.sum(dim=(0, 1)) / count


def _check_mesh_loss_scale(answer):
    gen = torch.Generator().manual_seed(11)
    cases = [  # kept[d, c, t]: the kept targets of the rank at data-, context- and tensor-parallel index d, c, t
        (torch.tensor([[5, 8], [4, 2]])[..., None], 4),  # the notebook's DP = 2 x CP = 2 mesh, FSDP's default
        (torch.tensor([[5, 8], [4, 2]])[..., None], 1),  # the same, after set_gradient_divide_factor(1.0)
        (torch.tensor([[3, 0], [6, 1]])[..., None].expand(2, 2, 2), 4),  # TP = 2: both TP ranks hold the same targets
        (torch.tensor([[2, 7, 0, 4]])[..., None], 4),  # CP = 4, no DP
        (torch.tensor([[3], [9], [0], [5]])[..., None].expand(4, 1, 2), 1),  # DP = 4, TP = 2, factor 1
        (torch.zeros(2, 2, 1, dtype=torch.long), 4),  # nothing kept anywhere
    ]
    for kept, factor in cases:
        dp, cp, tp = kept.shape
        case = f"with kept per rank {kept[..., 0].tolist()} (DP={dp}, CP={cp}, TP={tp}) and divide factor {factor}"
        scale = answer(kept.clone(), factor)
        scale = torch.as_tensor(scale, dtype=torch.float64)
        try:
            scale = scale.expand(kept.shape)
        except RuntimeError:
            raise AssertionError(f"{case}: return a number, or a tensor of shape {tuple(kept.shape)}") from None
        assert torch.isfinite(scale).all(), f"{case}: a scale is not finite: guard the count with clamp(min=1)"
        grads, want = _scale_case(kept, factor, gen)
        count = int(kept[:, :, 0].sum())
        for t in range(tp):  # each TP rank's parameter shard gets its gradient from its own copy of the loss
            got = (scale[:, :, t, None] * grads).sum(dim=(0, 1)) / factor
            if torch.allclose(got, want, rtol=1e-6, atol=1e-9):  # a float32 answer is right too
                continue
            per_replica = kept[:, :, 0].sum(dim=1, keepdim=True).clamp(min=1)
            per_cp = kept[:, :, 0].sum(dim=0, keepdim=True).clamp(min=1)
            named = {
                "each rank divides by its own kept count: that gives a mean of the ranks' means, and the ranks keep "
                "different numbers of targets; K is one number, the kept targets of every rank summed over DP and "
                "CP": factor / kept.clamp(min=1),
                "K is summed over the tensor-parallel ranks too: they hold the same targets, so each target is "
                "counted TP times; sum over DP and CP only": factor / kept.sum().clamp(min=1),
                "K is each data-parallel replica's own count (summed over CP only): that gives the mean of the "
                "replicas' means; sum over DP too": (factor / per_replica)[..., None],
                "K is summed over DP only: each context-parallel shard's own mean; sum over CP too": (factor / per_cp)[
                    ..., None
                ],
                f"the scale misses the framework's divide factor: it divides the summed gradients by {factor}, so "
                "multiply by it": 1 / torch.tensor(count).clamp(min=1),
                "the scale uses the world size DP·CP·TP where the framework divides by its factor": dp
                * cp
                * tp
                / torch.tensor(count).clamp(min=1),
            }
            for name, value in named.items():
                if count and torch.allclose(scale, torch.as_tensor(value, dtype=torch.float64).expand(kept.shape)):
                    raise AssertionError(f"{case}: {name}")
            ratio = (got @ want / (want @ want)).item() if count else float("nan")
            raise AssertionError(
                f"{case}: the reduced gradient of TP rank {t} is not the token mean's "
                f"(<g, g_ref>/<g_ref, g_ref> = {ratio:.4f})"
            )


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 5, dtype=torch.float64)

    def forward(self, x):
        return self.proj(x)


def _schedule(model, steps, n_microbatches, loss_fn, loss_kwargs, scale_grads):
    """What a pipeline schedule does to the gradients: per step(), loss_fn on each micro-batch (the batch split
    with tensor_split along dim 0), backward, and at the end the gradients divided by n when scale_grads."""
    losses = []
    for inputs, targets in steps:
        for x, y in zip(inputs.tensor_split(n_microbatches), targets.tensor_split(n_microbatches), strict=True):
            loss = loss_fn(model(x), y, **loss_kwargs)
            loss.backward()
            losses.append(loss.detach())
        if scale_grads:
            for p in model.parameters():
                p.grad.div_(n_microbatches)  # all of p.grad, the earlier steps' share included
    return losses


def _pipeline_case(gen, kept_rows):
    """One step() batch: inputs (B, 3, 4) and targets (B, 3), row b keeping its first kept_rows[b] targets."""
    inputs = torch.randn(len(kept_rows), 3, 4, generator=gen, dtype=torch.float64)
    targets = torch.randint(0, 5, (len(kept_rows), 3), generator=gen)
    return inputs, targets.masked_fill(torch.arange(3) >= torch.tensor(kept_rows)[:, None], -100)


def _check_pipeline_loss(answer):
    gen = torch.Generator().manual_seed(12)
    batches = [  # kept targets of each sequence of each step(): one sequence per micro-batch when n = 4
        [[2, 3, 0, 1]],
        [[1, 3, 3, 2], [0, 1, 2, 0]],
        [[0, 0, 0, 0]],  # a step that keeps nothing: K = 0 (last, so that a mean loss_fn is named first)
    ]
    for kept in batches:
        steps = [_pipeline_case(gen, rows) for rows in kept]
        for n in (2, 4):
            case = f"with {len(steps)} step() call(s) before optimizer.step() and n_microbatches={n}"
            got = answer([targets.clone() for _, targets in steps])
            assert isinstance(got, tuple) and len(got) == 3, f"{case}: return (loss_fn, loss_kwargs, scale_grads)"
            loss_fn, loss_kwargs, scale_grads = got
            assert callable(loss_fn), f"{case}: loss_fn must be a function of (output, target, **loss_kwargs)"
            assert isinstance(loss_kwargs, dict), f"{case}: loss_kwargs must be a dict (use {{}} for none)"
            assert isinstance(scale_grads, bool), f"{case}: scale_grads must be True or False"
            torch.manual_seed(0)
            model = _Linear()
            losses = _schedule(model, steps, n, loss_fn, loss_kwargs, scale_grads)
            grads = torch.cat([p.grad.flatten() for p in model.parameters()])
            torch.manual_seed(0)
            ref = _Linear()
            inputs = torch.cat([x for x, _ in steps])
            targets = torch.cat([y for _, y in steps])
            total = (targets != -100).sum()
            summed = F.cross_entropy(ref(inputs).flatten(0, 1), targets.flatten(), reduction="sum")
            token_mean = summed / total.clamp(min=1)  # 0 when nothing is kept
            token_mean.backward()
            want = torch.cat([p.grad.flatten() for p in ref.parameters()])
            logged = torch.stack([torch.as_tensor(loss, dtype=torch.float64).reshape(()) for loss in losses])
            if total == 0 and not (torch.isfinite(grads).all() and torch.isfinite(logged).all()):
                raise AssertionError(
                    f"{case}: a loss or gradient is nan: the step keeps no target, so K = 0 and the sum / K is 0/0; "
                    "guard the count, K.clamp(min=1)"
                )
            if torch.isnan(grads).any():
                raise AssertionError(
                    f"{case}: the gradients hold nan: a micro-batch keeps no target, and a mean over no targets is "
                    "0/0; divide the micro-batch's sum by the count of the whole step"
                )
            if torch.allclose(grads, want, rtol=1e-6, atol=1e-12):  # a float32 scale is right too
                assert torch.isfinite(logged).all(), (
                    f"{case}: the gradients are right, but a micro-batch that keeps no target logs a loss of "
                    f"{[round(v, 4) for v in logged.tolist()]}: a mean over no targets is 0/0; return the "
                    "micro-batch's sum divided by the count of the whole step, so that the logged losses add up to "
                    "the token mean"
                )
                token_mean = token_mean.detach()
                assert torch.isclose(logged.sum(), token_mean, rtol=1e-6), (
                    f"{case}: the gradients are right, but the logged micro-batch losses add up to "
                    f"{logged.sum().item():.4f}, not the token mean {token_mean.item():.4f}: return each micro-batch's "
                    "share of the token mean, its sum over K"
                )
                continue
            ratio = (grads @ want / (want @ want)).item()
            if scale_grads:
                torch.manual_seed(0)
                unscaled = _Linear()
                _schedule(unscaled, steps, n, loss_fn, loss_kwargs, False)
                if torch.allclose(torch.cat([p.grad.flatten() for p in unscaled.parameters()]), want, rtol=1e-6):
                    raise AssertionError(
                        f"{case}: scale_grads=True divides all the gradients by n_microbatches after each step() "
                        "(the earlier steps' share again at every later step), and your loss_fn already gives the "
                        "token mean's share: pass scale_grads=False"
                    )
            x, y = steps[0][0][:1], steps[0][1][:1]
            with torch.no_grad():
                sample = loss_fn(model(x), y, **loss_kwargs)
                if torch.allclose(sample, F.cross_entropy(model(x).flatten(0, 1), y.flatten())):
                    raise AssertionError(
                        f"{case}: your loss_fn is each micro-batch's own mean, so the step's gradient is a mean of "
                        "micro-batch means, and the micro-batches keep different numbers of targets"
                    )
            for i, (_, step_targets) in enumerate(steps if len(steps) > 1 else []):
                if torch.allclose(grads * (step_targets != -100).sum() / total, want, rtol=1e-6):
                    which = "the first" if i == 0 else "the last" if i == len(steps) - 1 else "one"
                    raise AssertionError(
                        f"{case}: K counts only {which} step()'s targets: count every step accumulated before "
                        "optimizer.step()"
                    )
            raise AssertionError(
                f"{case}: the accumulated gradients are not the token mean's over every step's targets "
                f"(<g, g_ref>/<g_ref, g_ref> = {ratio:.4f})"
            )


class _Ranks:
    """Simulated tensor-parallel ranks: one thread each, whose all_reduce(tensor, op) meets at a barrier."""

    def __init__(self, world):
        self.world, self.slots = world, [None] * world
        self.barrier = threading.Barrier(world, timeout=10)
        self.lock, self.calls, self.done = threading.Lock(), [0] * world, [None] * world

    def all_reduce_for(self, rank):
        def all_reduce(tensor, op):
            if op not in ("max", "sum"):
                raise ValueError(f"all_reduce takes op 'max' or 'sum', got {op!r}")
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"all_reduce reduces a tensor in place, got {type(tensor).__name__}")
            with self.lock:
                self.calls[rank] += 1
                if any(done is not None and done < self.calls[rank] for done in self.done):
                    self.barrier.abort()  # a rank that has finished will never join this call
            self.slots[rank] = tensor.detach().clone()
            self.barrier.wait()
            stacked = torch.stack(self.slots)
            result = stacked.amax(dim=0) if op == "max" else stacked.sum(dim=0)
            self.barrier.wait()
            with torch.no_grad():
                tensor.copy_(result)  # in place, and not recorded by autograd: as torch.distributed.all_reduce

        return all_reduce

    def run(self, fn):
        """fn(rank, all_reduce) on every rank at once; the results by rank, or the first rank's error."""
        results, errors = [None] * self.world, [None] * self.world

        def one(rank):
            try:
                results[rank] = fn(rank, self.all_reduce_for(rank))
            except BaseException as err:  # noqa: BLE001 (passed on to the caller)
                errors[rank] = err
                self.barrier.abort()  # the other ranks stop waiting for this one
            with self.lock:
                self.done[rank] = self.calls[rank]
                if any(calls > self.calls[rank] for calls in self.calls):
                    self.barrier.abort()  # another rank waits in a call this one never makes

        threads = [threading.Thread(target=one, args=(rank,)) for rank in range(self.world)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        real = [e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)]
        if real:
            raise real[0]
        if any(errors):
            raise AssertionError("the ranks called all_reduce a different number of times: they all must, alike")
        return results


def _check_vocab_parallel_ignore(answer):
    gen = torch.Generator().manual_seed(13)
    cases = [  # (targets, ranks, dtype, logit scale)
        ([3, 7, -100, 9, -100, 0], 2, torch.float64, 2),  # the notebook's rows: targets on both ranks' columns
        ([8, -100, 1, 6, 2, -100, 5], 2, torch.float64, 2),
        ([4, -100, 11, 0], 3, torch.float64, 2),  # 3 ranks of 4 columns
        ([-100, -100, -100], 2, torch.float64, 2),  # nothing kept: the sum is 0
        ([2, -100, 7, 5], 2, torch.float32, 100),  # float32 logits in the hundreds: exp overflows unless shifted
    ]
    for values, world, dtype, scale in cases:
        targets = torch.tensor(values)
        vocab = 4 * world if world == 3 else 10
        logits = (torch.randn(len(values), vocab, generator=gen, dtype=torch.float64) * scale).to(dtype)
        width = vocab // world
        # The loss is scaled after the Function (divided by K, in training): its backward receives that factor
        # as grad_sum. A random one, never 1, tells a backward that multiplies by it from one that does not.
        c = 2 + torch.rand((), generator=gen, dtype=torch.float64).item()
        case = f"with {dtype} targets {values} on {world} ranks of {width} columns each".replace("torch.", "")
        tol = dict(rtol=1e-9, atol=1e-9) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)

        def rank_loss(rank, all_reduce, logits=logits, targets=targets, width=width, case=case, c=c):
            local = logits[:, rank * width : (rank + 1) * width].clone().requires_grad_()
            loss = answer.apply(local, targets.clone(), rank * width, all_reduce)
            if loss is None:
                raise NotAnswered("forward returned None: fill in its body")
            assert isinstance(loss, torch.Tensor) and loss.numel() == 1, f"{case}: return a scalar, the sum"
            (grad,) = torch.autograd.grad(loss, local, grad_outputs=torch.full_like(loss, c), allow_unused=True)
            return loss.detach().reshape(()), grad

        results = _Ranks(world).run(rank_loss)
        full = logits.clone().requires_grad_()
        want = F.cross_entropy(full, targets, reduction="sum")
        (want_grad,) = torch.autograd.grad(want, full)
        kept = targets != -100
        with torch.no_grad():
            spurious = (logits.logsumexp(-1) - logits.max(-1).values)[~kept].sum()
            # each rank shifting by its own columns' maximum (the 'max' all-reduce left out)
            columns = logits.double().split(width, dim=-1)
            own_max = torch.stack([part.max(-1).values for part in columns])  # (ranks, rows)
            sum_exp = sum((part - m[:, None]).exp().sum(-1) for part, m in zip(columns, own_max, strict=True))
            index = targets.clamp(min=0)
            picked = logits.double().gather(1, index[:, None]).squeeze(1) - own_max.gather(0, index[None] // width)[0]
            local_max = ((sum_exp.log() - picked) * kept).sum()
            # a 'sum' all-reduce left out: of the target's logit (only the rank whose columns hold the target has
            # it), or of the sum of exponentials (each rank's own columns only)
            shifted = logits.double() - logits.double().max(-1, keepdim=True).values
            target_logit, owner = shifted.gather(1, index[:, None]).squeeze(1), index // width
            local_sums = {
                ("the target's logit", "only the rank whose columns hold the target has it"): [
                    ((shifted.logsumexp(-1) - target_logit * (owner == r)) * kept).sum() for r in range(world)
                ],
                ("the sum of exponentials", "each rank's covers its own columns only"): [
                    ((part.logsumexp(-1) - target_logit) * kept).sum() for part in shifted.split(width, dim=-1)
                ],
            }
        for rank, (loss, grad) in enumerate(results):
            loss = loss.detach().to(want.dtype)  # a float64 answer is compared as it is, not refused for its dtype
            assert torch.isfinite(loss), (
                f"{case}: rank {rank}'s sum is {loss.item()} with logits up to {logits.abs().max().item():.0f}: exp "
                "overflows; subtract each row's maximum (all-reduced with 'max') before exp"
            )
            detectable = not torch.isclose(want.detach() + spurious, want.detach(), **tol)
            if detectable and torch.isclose(loss, want.detach() + spurious, **tol):
                raise AssertionError(
                    f"{case}: rank {rank}'s sum counts the rows whose target is -100, logsumexp − max each: "
                    "zero their loss"
                )
            detectable = not torch.isclose(local_max.to(want.dtype), want.detach(), **tol)
            if detectable and torch.isclose(loss, local_max.to(loss.dtype), **tol):
                raise AssertionError(
                    f"{case}: rank {rank}'s sum is {loss.item():.4f}, as when each rank subtracts its own columns' "
                    "maximum: each rank's exponentials are then shifted by a different amount; all-reduce the row "
                    "maximum with 'max' first"
                )
            for (missing, why), by_rank in local_sums.items():
                variant = by_rank[rank]
                detectable = not torch.isclose(variant.to(want.dtype), want.detach(), **tol)
                if detectable and torch.isclose(loss, variant.to(loss.dtype), **tol):
                    raise AssertionError(
                        f"{case}: rank {rank}'s sum is {loss.item():.4f}, as when {missing} is not all-reduced "
                        f"({why}): all-reduce it with 'sum'"
                    )
            assert torch.isclose(loss, want.detach(), **tol), (
                f"{case}: rank {rank}'s sum is {loss.item():.4f}; F.cross_entropy(reduction='sum') gives "
                f"{want.item():.4f}"
            )
            assert grad is not None, f"{case}: rank {rank}'s sum does not depend on its logits: return a graph"
        grad = torch.cat([g for _, g in results], dim=1)
        assert torch.isfinite(grad).all(), f"{case}: the gradient holds inf or nan: compute the softmax shifted"
        if want_grad.abs().sum() > 0 and torch.allclose(grad, want_grad, **tol):
            raise AssertionError(
                f"{case}: backward ignores grad_sum. The sum is scaled after this Function (by 1/K in "
                f"training; here multiplied by {c:.3f}), and that factor reaches backward as grad_sum: multiply by it"
            )
        if grad[~kept].abs().sum() > 1e-6 and torch.allclose(grad[kept], c * want_grad[kept], **tol):
            raise AssertionError(
                f"{case}: the loss is right but the rows whose target is -100 still get a gradient (the softmax): "
                "zero their rows in backward too"
            )
        assert torch.allclose(grad, c * want_grad, **tol), (
            f"{case}: the gradient on the logits (every rank's columns side by side) differs from "
            f"F.cross_entropy(reduction='sum')'s times grad_sum ({c:.3f})"
        )


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "11-mesh-loss-scale": (
        _check_mesh_loss_scale,
        "K is one number for the whole step: every rank that holds different targets counts once (section 6)",
    ),
    "11-pipeline-loss": (
        _check_pipeline_loss,
        "count K before the first step(), pass it with loss_kwargs, and let nothing else divide (section 3)",
    ),
    "11-vocab-parallel-ignore": (
        _check_vocab_parallel_ignore,
        "mask the rows where target == -100 in forward (loss) and in backward (gradient), and multiply the "
        "gradient by grad_sum (section 5)",
    ),
}
