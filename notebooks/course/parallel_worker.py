"""Masks across parallel dimensions, for real: the worker that notebook 11 starts (gloo on 127.0.0.1, the CPU).

``run()`` starts 2 ranks once and runs, one after the other, every 2-rank demonstration with PyTorch's own
engines: FSDP2 (``fully_shard``) under each loss scale and divide factor of ``FSDP_CASES``; pipeline parallel
(``torch.distributed.pipelining``, 2 stages, ``ScheduleGPipe`` and ``Schedule1F1B``) under each loss and
``scale_grads`` of ``PP_CASES``; context parallel (the buffers sharded by ``context_parallel``'s head-tail
layout, or cut into contiguous halves) under each shift and count of ``CP_CASES``; and Megatron's
vocabulary-parallel cross-entropy (``VOCAB_CASES``). ``run_dp_cp()`` starts 4 ranks once, a 2 × 2 mesh of
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
# set_force_sum_reduction_for_comms(True)); S = this rank's summed loss, k its kept count, K the global count.
FSDP_CASES = {
    "local mean": ("S/k", None, None),
    "S/K": ("S/K", None, None),
    "W·S/K": ("W·S/K", None, None),
    "factor 1 on every module, S/K": ("S/K", "every", "every"),
    "factor 1 on the root only, S/K": ("S/K", "root", "root"),
    "factor 1 on every module, W·S/K": ("W·S/K", "every", "every"),
    "factor 1 on every module, local mean": ("S/k", "every", "every"),
    "force sum only, S/K": ("S/K", None, "every"),
    "factor 1 without force sum": ("S/K", "every", None),  # gloo refuses PREMUL_SUM: last, its model is broken
}
# name: (schedule, loss_fn, scale_grads); "sum" is divided by K only after step(), as a logged number.
PP_CASES = {
    "GPipe, mean": ("GPipe", "mean", True),
    "1F1B, mean": ("1F1B", "mean", True),
    "GPipe, mean, scale_grads=False": ("GPipe", "mean", False),
    "GPipe, sum/K": ("GPipe", "sum/K", False),
    "1F1B, sum/K": ("1F1B", "sum/K", False),
    "GPipe, sum/K, scale_grads=True": ("GPipe", "sum/K", True),
    "GPipe, sum, divided after step": ("GPipe", "sum", False),
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
VOCAB_CASES = ("rows, mean over N", "rows × mask, sum / K", "rows × mask, sum / K reduced over TP")
# name: (what each rank counts: its own shard, or its replica's whole sequences before sharding; the group the
# count is summed over; the scale of S/K). Megatron's per-replica reduce (K over CP, loss × cp_size) is the first.
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


def _fsdp_case(rank, world, mesh, loss_kind, factor_on, force_on):
    from torch.distributed.fsdp import FSDPModule, fully_shard

    model = make_mlp()
    for layer in (model[0], model[2]):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)  # the root owns no parameter of its own: both Linears are units of their own
    chosen = {"every": [m for m in model.modules() if isinstance(m, FSDPModule)], "root": [model], None: []}
    for module in chosen[factor_on]:
        module.set_gradient_divide_factor(1.0)  # this module's own parameter groups only: it has no recurse=
    for module in chosen[force_on]:
        module.set_force_sum_reduction_for_comms(True)
    inputs, targets = (t[rank] for t in fsdp_batch())
    summed = F.cross_entropy(model(inputs), targets, reduction="sum")
    kept, total = _count(targets, False), _count(targets)
    loss = {"S/k": summed / kept.clamp(min=1), "S/K": summed / total.clamp(min=1)}.get(loss_kind)
    loss = summed * world / total.clamp(min=1) if loss is None else loss
    try:
        loss.backward()
    except RuntimeError as err:  # both ranks raise alike, before any data moves
        return dict(error=f"{type(err).__name__}: {str(err).strip().splitlines()[0]}")
    return dict(loss=loss.item(), kept=kept.item(), total=total.item(), grad=_full_grad(model))


def _mean_loss(output, target):
    return F.cross_entropy(output.flatten(0, -2), target.flatten())


def _sum_over_count(output, target, K):
    return F.cross_entropy(output.flatten(0, -2), target.flatten(), reduction="sum") / K.clamp(min=1)


def _summed_loss(output, target):
    return F.cross_entropy(output.flatten(0, -2), target.flatten(), reduction="sum")


def _pp_case(rank, schedule, loss_name, scale_grads):
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

    model = make_mlp()
    part = model[:2] if rank == 0 else model[2:]  # stage 0: Linear + Tanh; stage 1: Linear
    stage = PipelineStage(part, rank, 2, torch.device("cpu"))
    loss_fn = {"mean": _mean_loss, "sum/K": _sum_over_count, "sum": _summed_loss}[loss_name]
    cls = {"GPipe": ScheduleGPipe, "1F1B": Schedule1F1B}[schedule]
    pipe = cls(stage, n_microbatches=len(PP_KEPT), loss_fn=loss_fn, scale_grads=scale_grads)
    inputs, targets = pp_batch()
    count = (targets != -100).sum()  # K of the whole step, counted before step() (all-reduce it over DP too)
    extra = {"loss_kwargs": {"K": count}} if loss_name == "sum/K" else {}
    losses = []
    if rank == 0:
        pipe.step(inputs, **extra)
    else:
        pipe.step(target=targets, losses=losses, **extra)  # loss_fn runs here, once per micro-batch
    return dict(grad=flat_grad(part.parameters()), losses=[loss.item() for loss in losses], K=count.item())


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


def _vocab_case(rank, world, name):
    logits = vocab_logits()
    width = logits.shape[1] // world
    local = logits[:, rank * width : (rank + 1) * width].clone().requires_grad_()
    targets = torch.tensor(VOCAB_TARGETS)
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
        out["vocab"][name] = _vocab_case(rank, world, name)
    from torch.distributed.tensor.experimental._attention import _HeadTailLoadBalancer

    out["head_tail_order"] = _HeadTailLoadBalancer(LENGTH, world, "cpu")._generate_indices()[0].long()
    return out


def _dp_cp_ranks(rank, world, payload, report):
    """DP = 2 × CP = 2: rank = 2·dp + cp. The gradients are averaged over all 4 ranks, as DDP over Megatron's
    data-parallel group with context parallel does, and FSDP's default over the flattened dp×cp mesh
    (torchtitan): here by an all-reduce and a division by 4, since DDP and FSDP each cost a rank over a second
    of start-up (both import torch._dynamo), and the 2-rank run shows FSDP's average for real."""
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
    stage's micro-batch ``losses`` and the whole model's ``grad`` (stage 0's then stage 1's). ``vocab``: per
    case, each rank's ``rows``, ``loss`` and the gradient of the whole logits (rank 0's columns, then rank 1's).
    ``head_tail_order``: the positions of a sequence in the order torch's ``_HeadTailLoadBalancer`` gives them
    to the ranks (each rank checks that ``context_parallel`` sharded its buffers that way).
    ``fail_rank``, ``stall`` and the timeouts are ``course.launch.launch``'s.
    """
    _check_torch()
    per_rank = launch(_two_ranks, None, 2, what="notebook 11's 2-rank run", fail_rank=fail_rank, stall=stall,
                      start_timeout=start_timeout, stall_timeout=stall_timeout, out_dir=out_dir)  # fmt: skip
    out = {part: _gather([r[part] for r in per_rank]) for part in ("fsdp", "cp")}
    out["pp"] = {
        name: dict(losses=per_rank[1]["pp"][name]["losses"], K=per_rank[1]["pp"][name]["K"],
                   grad=torch.cat([per_rank[0]["pp"][name]["grad"], per_rank[1]["pp"][name]["grad"]]))
        for name in PP_CASES
    }  # fmt: skip
    out["head_tail_order"] = per_rank[0]["head_tail_order"]  # torch's load balancer's order of the positions
    out["vocab"] = {
        name: dict(rows=[r["vocab"][name]["rows"] for r in per_rank], loss=[r["vocab"][name]["loss"] for r in per_rank],
                   grad=torch.cat([r["vocab"][name]["grad"] for r in per_rank], dim=1))
        for name in VOCAB_CASES
    }  # fmt: skip
    return out


def run_dp_cp(*, fail_rank=None, stall=None, start_timeout=300.0, stall_timeout=60.0, out_dir=None):
    """Start 4 ranks (DP = 2 × CP = 2) once; per case of ``DP_CP_CASES``: each rank's ``loss``, ``kept``,
    ``total`` and the reduced ``grad``."""
    _check_torch()
    per_rank = launch(_dp_cp_ranks, None, 4, what="notebook 11's DP×CP run", fail_rank=fail_rank, stall=stall,
                      start_timeout=start_timeout, stall_timeout=stall_timeout, out_dir=out_dir)  # fmt: skip
    return _gather(per_rank)


__all__ = ["CP_CASES", "DP_CP_CASES", "FSDP_CASES", "PP_CASES", "MIN_TORCH", "VOCAB_CASES", "run", "run_dp_cp"]
