"""Masks across parallel dimensions, for real: the worker that notebook 11 starts (gloo on 127.0.0.1, the CPU).

``run()`` starts 2 ranks once and runs, one after the other, every 2-rank demonstration with PyTorch's own
engines: FSDP2 (``fully_shard``) under each loss scale, divide factor and dtype of ``FSDP_CASES``; pipeline
parallel (``torch.distributed.pipelining``, 2 stages, ``ScheduleGPipe`` and ``Schedule1F1B``) under each loss,
``scale_grads`` and number of accumulated ``step()`` calls of ``PP_CASES``; context parallel (the buffers
sharded by ``context_parallel``'s head-tail layout, or cut into contiguous halves) under each shift and count
of ``CP_CASES``; and the vocabulary-parallel cross-entropy (``VOCAB_CASES``): Megatron's algorithm, and torch's
own ``loss_parallel()``. ``run_dp_cp()`` starts 4 ranks once, a 2 × 2 mesh of
data parallel × context parallel whose gradients are averaged over all 4 (as DDP and FSDP's default do),
and counts K over each group of ``DP_CP_CASES``.

Both return plain numbers and tensors, one entry per case, gathered from every rank, to compare with the
single-process references of ``course.parallel_setups``. A gradient is the whole model's (FSDP's sharded
gradients gathered with ``full_tensor()``, the pipeline stages' concatenated). Starting, progress, stall
detection and failures are ``course.launch``'s: every failure says how far each rank got.

>>> results = run()  # doctest: +SKIP
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F

from course.launch import launch
from course.parallel_setups import (
    CP_LENGTHS,
    DP_CP_LENGTHS,
    EMPTY_LENGTHS,
    LENGTH,
    PP_KEPT,
    VOCAB_TARGETS,
    VocabParallelCrossEntropy,
    flat_grad,
    fsdp_batch,
    layout,
    make_mlp,
    make_token_model,
    pp_batch,
    shift,
    token_batch,
    vocab_logits,
)

# name: (loss each rank backprops, modules given set_gradient_divide_factor(1.0), modules given
# set_force_sum_reduction_for_comms(True), the model's dtype); S = this rank's summed loss, k its kept count, K the
# global count. FSDP reduces float32 and bfloat16 gradients with AVG or PREMUL_SUM; any other dtype (float16,
# float64) with SUM and a division, so float64 needs no force sum on gloo.
FSDP_CASES = {
    "local mean": ("S/k", None, None, torch.float32),
    "S/K": ("S/K", None, None, torch.float32),
    "W·S/K": ("W·S/K", None, None, torch.float32),
    "factor 1 on every module, S/K": ("S/K", "every", "every", torch.float32),
    "factor 1 on the root only, S/K": ("S/K", "root", "root", torch.float32),
    "factor 1 on every module, W·S/K": ("W·S/K", "every", "every", torch.float32),
    "factor 1 on every module, local mean": ("S/k", "every", "every", torch.float32),
    "force sum only, S/K": ("S/K", None, "every", torch.float32),
    "float64, factor 1 without force sum": ("S/K", "every", None, torch.float64),
    "factor 1 without force sum": ("S/K", "every", None, torch.float32),  # gloo refuses PREMUL_SUM: last
}
# name: (schedule, loss_fn, scale_grads, step() calls before optimizer.step()); "sum" is divided by K only after
# step(), as a logged number; "sum/K, closure" reads K from a holder the loss_fn closes over, set before step()
# (no loss_kwargs: the route for torch 2.12 and earlier). With 2 steps, each step() gets half the batch, in 2
# micro-batches, and K counts both halves.
PP_CASES = {
    "GPipe, mean": ("GPipe", "mean", True, 1),
    "1F1B, mean": ("1F1B", "mean", True, 1),
    "GPipe, mean, scale_grads=False": ("GPipe", "mean", False, 1),
    "GPipe, sum/K": ("GPipe", "sum/K", False, 1),
    "1F1B, sum/K": ("1F1B", "sum/K", False, 1),
    "GPipe, sum/K, closure": ("GPipe", "sum/K, closure", False, 1),
    "GPipe, sum/K, scale_grads=True": ("GPipe", "sum/K", True, 1),
    "GPipe, sum, divided after step": ("GPipe", "sum", False, 1),
    "GPipe, 2 steps, sum/K": ("GPipe", "sum/K", False, 2),
    "GPipe, 2 steps, sum/K, scale_grads=True": ("GPipe", "sum/K", True, 2),
}
# name: (sequence lengths, layout, where the targets are shifted, the loss each rank backprops)
CP_CASES = {
    "local shift, head-tail": (CP_LENGTHS, "head-tail", "local", "W·S/K_cp"),
    "local shift, contiguous": (CP_LENGTHS, "contiguous", "local", "W·S/K_cp"),
    "global shift, head-tail": (CP_LENGTHS, "head-tail", "global", "W·S/K_cp"),
    "global shift, contiguous": (CP_LENGTHS, "contiguous", "global", "W·S/K_cp"),
    "local mean, head-tail": (CP_LENGTHS, "head-tail", "global", "S/k"),
    "local mean, contiguous": (CP_LENGTHS, "contiguous", "global", "S/k"),
    "pre-shard count": (CP_LENGTHS, "head-tail", "global", "W·S/K_pre"),
    "pre-shard count reduced over CP": (CP_LENGTHS, "head-tail", "global", "W·S/K_pre,cp"),
    "empty shard, mean": (EMPTY_LENGTHS, "head-tail", "global", "mean"),
    "empty shard, none × mask / mask.sum()": (EMPTY_LENGTHS, "head-tail", "global", "none×mask/mask.sum()"),
    "empty shard, unignored rows × mask / mask.sum()": (EMPTY_LENGTHS, "head-tail", "global", "rows×mask/mask.sum()"),
    "empty shard, W·S/K_cp": (EMPTY_LENGTHS, "head-tail", "global", "W·S/K_cp"),
}
# Megatron's algorithm (course.parallel_setups.VocabParallelCrossEntropy), then torch's loss_parallel() on the
# logits as a DTensor sharded by class: on the 1-D TP mesh, and on a 2-D (1 × 2) mesh, where it refuses a mean.
VOCAB_CASES = (
    "rows, mean over N",
    "rows × mask, sum / K",
    "rows × mask, sum / K reduced over TP",
    "loss_parallel, sum / K",
    "loss_parallel, mean",
    "loss_parallel, mean on a 2-D mesh",
)
# name: (what each rank counts: its own shard, or its replica's whole sequences before sharding; the group the
# count is summed over; the scale of S/K). Megatron-LM's per-replica reduce before core 0.13 (K over CP, loss ×
# cp_size; removed in core 0.13.0rc0, Megatron-LM issue #1676) is the first.
DP_CP_CASES = {
    "K over CP only, × 2": ("shard", "cp", 2),
    "K over DP only, × 2": ("shard", "dp", 2),
    "K over DP×CP, × 4": ("shard", "dp×cp", 4),
    "pre-shard count over DP, × 4": ("pre-shard", "dp", 4),
    "pre-shard count over DP×CP, × 4": ("pre-shard", "dp×cp", 4),
}


def _all_reduce(tensor, op, group=None):
    """all_reduce(tensor, "max" | "sum") in place over ``group``: the form VocabParallelCrossEntropy calls."""
    dist.all_reduce(tensor, op={"max": dist.ReduceOp.MAX, "sum": dist.ReduceOp.SUM}[op], group=group)


def _count(targets, group=None):
    """The kept targets of ``targets``, summed over ``group`` (no reduction when group is False)."""
    count = (targets != -100).sum()
    if group is not False:
        dist.all_reduce(count, group=group)
    return count


def _full_grad(model):
    """FSDP's reduced gradient of every parameter, gathered from the shards (a collective: every rank calls it)."""
    return torch.cat([p.grad.full_tensor().flatten() for p in model.parameters()])


def _fsdp_case(rank, world, mesh, loss_kind, factor_on, force_on, dtype):
    from torch.distributed.fsdp import FSDPModule, fully_shard

    model = make_mlp().to(dtype)
    for layer in (model[0], model[2]):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)  # the root owns no parameter of its own: both Linears are units of their own
    chosen = {"every": [m for m in model.modules() if isinstance(m, FSDPModule)], "root": [model], None: []}
    for module in chosen[factor_on]:
        module.set_gradient_divide_factor(1.0)  # this module's own parameter groups only: it has no recurse=
    for module in chosen[force_on]:
        module.set_force_sum_reduction_for_comms(True)
    inputs, targets = (t[rank] for t in fsdp_batch())
    summed = F.cross_entropy(model(inputs.to(dtype)), targets, reduction="sum")
    kept, total = _count(targets, False), _count(targets)
    loss = {"S/k": summed / kept.clamp(min=1), "S/K": summed / total.clamp(min=1)}.get(loss_kind)
    loss = summed * world / total.clamp(min=1) if loss is None else loss
    try:
        loss.backward()
    except RuntimeError as err:  # both ranks raise alike, before any data moves
        return dict(error=f"{type(err).__name__}: {str(err).strip().splitlines()[0]}")
    return dict(loss=loss.item(), kept=kept.item(), total=total.item(), grad=_full_grad(model).float())


def _mean_loss(output, target):
    return F.cross_entropy(output.flatten(0, -2), target.flatten())


def _sum_over_count(output, target, K):
    return F.cross_entropy(output.flatten(0, -2), target.flatten(), reduction="sum") / K.clamp(min=1)


def _summed_loss(output, target):
    return F.cross_entropy(output.flatten(0, -2), target.flatten(), reduction="sum")


def _pp_case(rank, schedule, loss_name, scale_grads, steps):
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

    model = make_mlp()
    part = model[:2] if rank == 0 else model[2:]  # stage 0: Linear + Tanh; stage 1: Linear
    stage = PipelineStage(part, rank, 2, torch.device("cpu"))
    inputs, targets = pp_batch()
    count = (targets != -100).sum()  # K of every step() before optimizer.step(), counted before the first
    holder = {"K": count}  # what a closure reads: set it before each step(), on torch 2.12 and earlier too
    calls = []

    def loss_fn(output, target, **kwargs):
        calls.append(1)  # how many times the last stage runs loss_fn
        if loss_name == "sum/K, closure":
            return _summed_loss(output, target) / holder["K"].clamp(min=1)
        return {"mean": _mean_loss, "sum/K": _sum_over_count, "sum": _summed_loss}[loss_name](output, target, **kwargs)

    cls = {"GPipe": ScheduleGPipe, "1F1B": Schedule1F1B}[schedule]
    pipe = cls(stage, n_microbatches=len(PP_KEPT) // steps, loss_fn=loss_fn, scale_grads=scale_grads)
    extra = {"loss_kwargs": {"K": count}} if loss_name == "sum/K" else {}
    losses = []
    for x, y in zip(inputs.tensor_split(steps), targets.tensor_split(steps), strict=True):  # accumulated step() calls
        if rank == 0:
            pipe.step(x, **extra)
        else:
            step_losses = []  # step() replaces what the list held
            pipe.step(target=y, losses=step_losses, **extra)  # loss_fn runs here, once per micro-batch
            losses += [loss.item() for loss in step_losses]
    return dict(grad=flat_grad(part.parameters()), losses=losses, K=count.item(), calls=len(calls))


def _shard(mesh, rank, cp, name, tensors):
    """This rank's shard of each (B, T) tensor: torch's context_parallel for head-tail, halves for contiguous."""
    if name == "contiguous":
        return [t[:, layout(name, cp)[rank]] for t in tensors]
    from torch.distributed.tensor.experimental import context_parallel

    buffers = [t.clone() for t in tensors]
    with context_parallel(mesh, buffers=buffers, buffer_seq_dims=[1] * len(buffers), no_restore_buffers=set(buffers)):
        pass  # it shards the buffers in place on entry; the per-position model needs no ring attention
    positions = layout(name, cp)[rank]
    assert all(torch.equal(b, t[:, positions]) for b, t in zip(buffers, tensors, strict=True)), "unexpected layout"
    return buffers


def _cp_loss(model, ids, targets, kind, cp, cp_group, pre_shard):
    """The loss this context-parallel rank backprops, with the counts it used."""
    logits = model(ids.flatten())  # flat ids: a 3-d input would make FSDP's output a view, which it warns about
    flat = targets.flatten()
    summed = F.cross_entropy(logits, flat, reduction="sum")
    kept, total = _count(flat, False), _count(flat, cp_group)
    if kind == "S/k":
        return summed / kept.clamp(min=1), kept, total
    if kind == "mean":
        return F.cross_entropy(logits, flat), kept, total
    if kind in ("none×mask/mask.sum()", "rows×mask/mask.sum()"):
        mask = flat != -100
        rows = F.cross_entropy(logits, flat if kind.startswith("none") else flat.clamp(min=0), reduction="none")
        return (rows * mask).sum() / mask.sum(), kept, total
    if kind == "W·S/K_pre":
        total = pre_shard
    elif kind == "W·S/K_pre,cp":
        total = pre_shard.clone()
        dist.all_reduce(total, group=cp_group)
    return summed * cp / total.clamp(min=1), kept, total


def _cp_case(rank, mesh, lengths, name, where, kind):
    from torch.distributed.fsdp import fully_shard

    model = fully_shard(make_token_model(), mesh=mesh)  # the CP ranks hold replicas of the model: FSDP averages
    ids, labels = token_batch(lengths)
    if where == "global":
        ids, targets = _shard(mesh, rank, 2, name, [ids, shift(labels)])
    else:  # the trap: shard the labels, then shift each shard on its own
        ids, labels = _shard(mesh, rank, 2, name, [ids, labels])
        targets = shift(labels)
    pre_shard = (shift(token_batch(lengths)[1]) != -100).sum()  # counted on whole sequences, before sharding
    loss, kept, total = _cp_loss(model, ids, targets, kind, 2, None, pre_shard)
    loss.backward()
    return dict(loss=loss.item(), kept=kept.item(), total=total.item(), targets=targets,
                positions=layout(name, 2)[rank], grad=_full_grad(model))  # fmt: skip


def _loss_parallel(local, targets, mesh, name):
    """torch's own vocabulary-parallel cross-entropy: F.cross_entropy under loss_parallel() on class-sharded logits."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Replicate, Shard
    from torch.distributed.tensor.parallel import loss_parallel

    placements = [Shard(1)]  # the 2 ranks' 1-D mesh, here a tensor-parallel group: each rank holds 5 classes
    if name.endswith("2-D mesh"):  # a data-parallel dimension of size 1 beside the tensor-parallel one
        mesh, placements = init_device_mesh("cpu", (1, 2), mesh_dim_names=("dp", "tp")), [Replicate(), Shard(1)]
    logits = DTensor.from_local(local, mesh, placements)
    with loss_parallel():
        try:
            if name.startswith("loss_parallel, mean"):
                loss = F.cross_entropy(logits, targets, ignore_index=-100)
            else:
                loss = F.cross_entropy(logits, targets, ignore_index=-100, reduction="sum") / _count(targets, False)
        except NotImplementedError as err:  # both ranks raise alike, before any data moves
            return dict(error=f"{type(err).__name__}: {str(err).strip().splitlines()[0]}")
        loss.backward()  # under loss_parallel() too
    return dict(rows=None, loss=loss.full_tensor().item(), grad=local.grad)


def _vocab_case(rank, world, mesh, name):
    logits = vocab_logits()
    width = logits.shape[1] // world
    local = logits[:, rank * width : (rank + 1) * width].clone().requires_grad_()
    targets = torch.tensor(VOCAB_TARGETS)
    if name.startswith("loss_parallel"):
        return _loss_parallel(local, targets, mesh, name)
    rows = VocabParallelCrossEntropy.apply(local, targets, rank * width, _all_reduce)
    mask = targets != -100
    if name == "rows, mean over N":
        loss = rows.mean()  # Megatron's rows as they come: every row, each divided by N
    else:
        count = _count(targets, None if name.endswith("over TP") else False)
        loss = (rows * mask).sum() / count.clamp(min=1)
    loss.backward()
    return dict(rows=rows.detach(), loss=loss.item(), grad=local.grad)


def _two_ranks(rank, world, payload, report):
    """Every 2-rank demonstration, one after the other, on one process group."""
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (world,))
    out = {"fsdp": {}, "pp": {}, "cp": {}, "vocab": {}}
    for name, case in FSDP_CASES.items():
        report(f"FSDP: {name}")
        out["fsdp"][name] = _fsdp_case(rank, world, mesh, *case)
    for name, case in PP_CASES.items():
        report(f"pipeline: {name}")
        out["pp"][name] = _pp_case(rank, *case)
    for name, case in CP_CASES.items():
        report(f"context parallel: {name}")
        out["cp"][name] = _cp_case(rank, mesh, *case)
    for name in VOCAB_CASES:
        report(f"vocabulary parallel: {name}")
        out["vocab"][name] = _vocab_case(rank, world, mesh, name)
    from torch.distributed.tensor.experimental import context_parallel
    from torch.distributed.tensor.experimental._attention import _HeadTailLoadBalancer

    out["head_tail_order"] = _HeadTailLoadBalancer(LENGTH, world, "cpu")._generate_indices()[0].long()
    report("context parallel: a length of 6")
    six = torch.arange(6)[None].clone()  # 6 is no multiple of 2 · cp = 4: context_parallel cuts it in halves
    with context_parallel(mesh, buffers=[six], buffer_seq_dims=[1], no_restore_buffers={six}):
        pass
    out["length_6_positions"] = six[0].tolist()
    return out


def _dp_cp_ranks(rank, world, payload, report):
    """DP = 2 × CP = 2: rank = 2·dp + cp. The gradients are averaged over all 4 ranks, as FSDP's default does
    over a flattened dp×cp mesh and Megatron's DDP without --calculate-per-token-loss: here by an all-reduce and
    a division by 4, which keeps the arithmetic in view; the 2-rank run shows FSDP's average for real."""
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "cp"))
    groups = {"dp": mesh.get_group("dp"), "cp": mesh.get_group("cp"), "dp×cp": None}
    dp, cp = divmod(rank, 2)
    ids, labels = token_batch([n for lengths in DP_CP_LENGTHS for n in lengths])
    ids, labels = ids[2 * dp : 2 * dp + 2], labels[2 * dp : 2 * dp + 2]  # this replica's two sequences
    pre_shard = (shift(labels) != -100).sum()
    where = layout("head-tail", 2)[cp]  # context_parallel's layout, checked against it in the 2-rank run
    ids, targets = ids[:, where], shift(labels)[:, where]
    out = {}
    for name, (counted, over, scale) in DP_CP_CASES.items():
        report(f"DP×CP: {name}")
        model = make_token_model()
        summed = F.cross_entropy(model(ids.flatten()), targets.flatten(), reduction="sum")
        total = (targets != -100).sum() if counted == "shard" else pre_shard.clone()
        dist.all_reduce(total, group=groups[over])
        loss = summed * scale / total.clamp(min=1)  # right: 4, the number of ranks the gradients are averaged over
        loss.backward()
        grad = flat_grad(model.parameters())
        dist.all_reduce(grad)  # the average over all 4 ranks: a sum, then / 4
        out[name] = dict(loss=loss.item(), kept=(targets != -100).sum().item(), total=total.item(), grad=grad / world)
    return out


def _gather(per_rank, keys_per_rank=("loss", "kept", "total", "targets", "positions", "rows", "error")):
    """One record per case: per-rank values listed by rank; a gradient that every rank holds, once."""
    merged = {}
    for name in per_rank[0]:
        records = [r[name] for r in per_rank]
        case = {key: [r[key] for r in records] for key in keys_per_rank if key in records[0]}
        if "grad" in records[0]:
            grads = [r["grad"] for r in records]
            if not all(torch.allclose(grads[0], g, rtol=0, atol=0, equal_nan=True) for g in grads):
                raise RuntimeError(f"{name!r}: the ranks hold different gradients after the reduction")
            case["grad"] = grads[0]
        merged[name] = case
    return merged


MIN_TORCH = (2, 13)  # ScheduleGPipe.step(loss_kwargs=...) came in torch 2.13 (pytorch/pytorch PR #181057)


def _check_torch():
    """A clear error on a torch too old for this worker, before any process starts."""
    version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    if version < MIN_TORCH:
        raise RuntimeError(
            f"notebook 11's worker needs torch {'.'.join(map(str, MIN_TORCH))} or later (its pipeline schedule's "
            f"step() must take loss_kwargs); this is torch {torch.__version__}"
        )


def run(*, fail_rank=None, stall=None, start_timeout=300.0, stall_timeout=60.0, out_dir=None):
    """Start 2 ranks once and run every 2-rank demonstration; return ``{"fsdp", "pp", "cp", "vocab"}``.

    ``fsdp`` and ``cp``: per case, each rank's ``loss``, ``kept`` and ``total`` (the K it used) and the
    reduced ``grad`` (or ``error``, the one line a rank's backward raised). ``pp``: per case, the last
    stage's micro-batch ``losses`` (of every ``step()``), the number of ``calls`` of its ``loss_fn``, ``K`` and
    the whole model's ``grad`` (stage 0's then stage 1's). ``vocab``: per case, each rank's ``rows`` (Megatron's
    cases; None for ``loss_parallel``), ``loss`` and the gradient of the whole logits (rank 0's columns, then
    rank 1's), or each rank's ``error``. ``head_tail_order``: the positions of a sequence in the order torch's
    ``_HeadTailLoadBalancer`` gives them to the ranks (each rank checks that ``context_parallel`` sharded its
    buffers that way); ``length_6_positions``: each rank's positions of a sequence of 6 after ``context_parallel``.
    ``fail_rank``, ``stall`` and the timeouts are ``course.launch.launch``'s.
    """
    _check_torch()
    per_rank = launch(_two_ranks, None, 2, what="notebook 11's 2-rank run", fail_rank=fail_rank, stall=stall,
                      start_timeout=start_timeout, stall_timeout=stall_timeout, out_dir=out_dir)  # fmt: skip
    out = {part: _gather([r[part] for r in per_rank]) for part in ("fsdp", "cp")}
    out["pp"] = {
        name: dict(losses=per_rank[1]["pp"][name]["losses"], K=per_rank[1]["pp"][name]["K"],
                   calls=per_rank[1]["pp"][name]["calls"],
                   grad=torch.cat([per_rank[0]["pp"][name]["grad"], per_rank[1]["pp"][name]["grad"]]))
        for name in PP_CASES
    }  # fmt: skip
    out["head_tail_order"] = per_rank[0]["head_tail_order"]  # torch's load balancer's order of the positions
    out["length_6_positions"] = [r["length_6_positions"] for r in per_rank]
    out["vocab"] = {}
    for name in VOCAB_CASES:
        records = [r["vocab"][name] for r in per_rank]
        if "error" in records[0]:
            out["vocab"][name] = dict(error=[r["error"] for r in records])
        else:
            out["vocab"][name] = dict(rows=[r["rows"] for r in records], loss=[r["loss"] for r in records],
                                      grad=torch.cat([r["grad"] for r in records], dim=1))  # fmt: skip
    return out


def run_dp_cp(*, fail_rank=None, stall=None, start_timeout=300.0, stall_timeout=60.0, out_dir=None):
    """Start 4 ranks (DP = 2 × CP = 2) once; per case of ``DP_CP_CASES``: each rank's ``loss``, ``kept``,
    ``total`` and the reduced ``grad``."""
    _check_torch()
    per_rank = launch(_dp_cp_ranks, None, 4, what="notebook 11's DP×CP run", fail_rank=fail_rank, stall=stall,
                      start_timeout=start_timeout, stall_timeout=stall_timeout, out_dir=out_dir)  # fmt: skip
    return _gather(per_rank)


__all__ = ["CP_CASES", "DP_CP_CASES", "FSDP_CASES", "PP_CASES", "MIN_TORCH", "VOCAB_CASES", "run", "run_dp_cp"]
