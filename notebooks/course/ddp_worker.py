"""Data-parallel gradients of a masked loss, for real: the worker that notebook 07 starts.

``run(scenarios)`` starts ``world_size`` processes (gloo on 127.0.0.1, a free port), wraps a tiny model in
``DistributedDataParallel`` and, on each rank, accumulates its micro-batches (``no_sync()`` for all but the
last), normalising the summed loss in one of four ways (``NORMALISATIONS``): divide by the rank's own kept
count, by the global kept count K (all-reduced before any backward), by K and multiply by the world size W,
or backprop the plain sums and multiply the accumulated gradients by W / K before the step. Counts are
guarded with ``clamp(min=1)``; the optimizer steps only when K is not 0.

A scenario gives the kept targets of each micro-batch on each rank: ``[[1, 2], [4, 0]]`` means rank 0 keeps
1 then 2 targets and rank 1 keeps 4 then 0. ``reference(kept)`` is the single-process gradient of the whole
batch. ``zero_loss_steps`` runs separate optimizer steps instead (one micro-batch each, no update), where a
rank with nothing kept backprops a zero loss either through the model or detached from it (``ZERO_LOSSES``).

The processes always end, and a failing or stalled rank makes ``run`` raise ``RuntimeError``, never hang
(``course.launch`` starts and watches them). Each rank writes how far it got (spawned, process group up, DDP
built, micro-batch k) to a file; the run is stopped when no rank has made progress for ``stall_timeout``
seconds (``start_timeout`` while the ranks are still starting, which reports nothing while Python imports
torch), and the error says where each rank was.

>>> records = run({"uneven": [[1, 2], [4, 0]]})  # doctest: +SKIP
"""

import contextlib

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from course.launch import launch

NORMALISATIONS = ("own mean", "sum / global", "x world size", "grads x W/K")
ZERO_LOSSES = ("through the model", "detached")
ROWS, FEATURES, CLASSES = 4, 3, 5  # rows per micro-batch; the model is Linear(FEATURES, CLASSES)


def make_batch(kept):
    """Inputs (W, M, ROWS, FEATURES) and targets (W, M, ROWS), -100 after the first kept[w][m] rows."""
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(len(kept), len(kept[0]), ROWS, FEATURES, generator=gen)
    targets = torch.randint(0, CLASSES, inputs.shape[:3], generator=gen)
    return inputs, targets.masked_fill(torch.arange(ROWS) >= torch.tensor(kept)[..., None], -100)


def make_model():
    """The same tiny model on every rank (DDP also broadcasts rank 0's parameters)."""
    torch.manual_seed(0)
    return torch.nn.Linear(FEATURES, CLASSES)


def flat_grad(model):
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in model.parameters()])


def reference(kept, micro_batches=None):
    """Gradient of the guarded token mean over the whole batch (or only the given micro-batches), in one process."""
    model, (inputs, targets) = make_model(), make_batch(kept)
    if micro_batches is not None:
        inputs, targets = inputs[:, micro_batches], targets[:, micro_batches]
    total = F.cross_entropy(model(inputs.reshape(-1, FEATURES)), targets.flatten(), reduction="sum")
    (total / (targets != -100).sum().clamp(min=1)).backward()
    return flat_grad(model)


def loss_to_backprop(summed, normalisation, kept, total, world):
    """The loss this rank backprops for one micro-batch, from its summed loss S_r (``reduction="sum"``).

    kept: k_r, this rank's kept count; total: K, the kept count of all ranks (all-reduced before the first
    backward; "grads x W/K" does not need it until after the last one); world: W, the number of ranks.
    """
    if normalisation == "own mean":
        return summed / kept.clamp(min=1)  # S_r / k_r
    if normalisation == "sum / global":
        return summed / total.clamp(min=1)  # S_r / K
    if normalisation == "x world size":
        return summed * world / total.clamp(min=1)  # W * S_r / K
    if normalisation == "grads x W/K":
        return summed  # S_r; after the last backward, scale_gradients multiplies every gradient by W / K
    raise ValueError(f"unknown normalisation {normalisation!r}: expected one of {NORMALISATIONS}")


def scale_gradients(model, total, world):
    """For "grads x W/K": after the last backward (DDP has averaged the gradients), before clipping and the step."""
    for p in model.parameters():
        p.grad.mul_(world / total.clamp(min=1))


def train_step(rank, world, kept, normalisation, report=print):
    """One accumulated DDP step on this rank's micro-batches; returns what this rank saw."""
    model = DistributedDataParallel(make_model())
    report("DDP built")
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    inputs, targets = (t[rank] for t in make_batch(kept))
    local = (targets != -100).sum()
    total = local.clone()
    if normalisation != "grads x W/K":
        dist.all_reduce(total)  # the global kept count, known on every rank before the first backward
    before, loss_sum = torch.cat([p.detach().flatten() for p in model.parameters()]), 0.0
    for m in range(len(inputs)):
        last = m == len(inputs) - 1  # DDP all-reduces (averages) the accumulated gradients in the last backward
        with contextlib.nullcontext() if last else model.no_sync():
            summed = F.cross_entropy(model(inputs[m]), targets[m], reduction="sum")
            loss = loss_to_backprop(summed, normalisation, local, total, world)
            loss.backward()  # a rank with nothing kept still runs it: the all-reduce needs every rank
        loss_sum += loss.item()
        report(f"micro-batch {m + 1}/{len(inputs)} backward done")
    if normalisation == "grads x W/K":  # K may come after the backward passes: scale the gradients instead
        dist.all_reduce(total)
        scale_gradients(model, total, world)  # before any clipping and before the step
    stepped = total.item() > 0  # the same decision on every rank: no step when nothing is kept anywhere
    if stepped:
        optimizer.step()
    changed = not torch.equal(before, torch.cat([p.detach().flatten() for p in model.parameters()]))
    return dict(kept=local.item(), total=total.item(), loss=loss_sum, grad=flat_grad(model).tolist(),
                stepped=stepped, changed=changed)  # fmt: skip


def zero_loss_steps(rank, world, kept, zero_loss, report=print):
    """Separate steps (one micro-batch each, no update); a rank with nothing kept backprops a zero loss.

    ``zero_loss="through the model"`` computes it as the others do (a sum over no targets, 0 with a graph), so
    DDP's hooks fire and all-reduce; ``"detached"`` skips the model: no hook fires and this rank all-reduces
    nothing in that step. Returns the gradient this rank holds after each step's backward.
    """
    model = DistributedDataParallel(make_model())
    report("DDP built")
    inputs, targets = (t[rank] for t in make_batch(kept))
    records = []
    for s in range(len(inputs)):
        model.zero_grad(set_to_none=True)
        count = sum(k[s] for k in kept)  # K of this step, known on every rank (here from the scenario)
        if (targets[s] != -100).any() or zero_loss == "through the model":
            loss = F.cross_entropy(model(inputs[s]), targets[s], reduction="sum") * world / max(count, 1)
        else:
            loss = torch.zeros((), requires_grad=True)  # the slip: a zero that does not go through the model
        loss.backward()
        records.append(dict(step=s, kept=int((targets[s] != -100).sum()), grad=flat_grad(model).tolist()))
        report(f"step {s + 1}/{len(inputs)} backward done")
    return records


def _rank_jobs(rank, world, jobs, report):
    """What one rank runs (course.launch starts it): every job, one record per job (or per step)."""
    records = []
    for i, (kind, name, kept, mode) in enumerate(jobs):
        report.job = f"job {i + 1}/{len(jobs)} ({name!r}, {mode})"
        if kind == "accumulate":
            records.append(dict(scenario=name, normalisation=mode, rank=rank,
                                **train_step(rank, world, kept, mode, report)))  # fmt: skip
        else:
            records += [dict(scenario=name, zero_loss=mode, rank=rank, **r)
                        for r in zero_loss_steps(rank, world, kept, mode, report)]  # fmt: skip
    return records


def run(scenarios, world_size=2, fail_rank=None, *, zero_loss_scenarios=None, stall=None, start_timeout=300.0,
        stall_timeout=60.0, out_dir=None):  # fmt: skip
    """Run every scenario under every normalisation; return one record per (scenario, normalisation, rank).

    ``zero_loss_scenarios`` (name: kept per rank per step) adds, for each, one record per (zero loss, rank,
    step) from ``zero_loss_steps``. ``fail_rank=r`` makes rank r raise right after joining the process group;
    ``stall=(r, stage)`` makes rank r stop making progress once it reports a stage starting with ``stage``
    (both for the tests). run() then stops every rank and raises RuntimeError: the failed rank's last error
    line, or how long nothing moved, and how far each rank got. From a script (not a notebook), call run()
    under ``if __name__ == "__main__":``, as the spawn and forkserver start methods require. Each rank's
    output goes to ``rank<r>.err`` in ``out_dir`` (a temporary folder unless given), shown only when
    something fails.
    """
    zero_loss_scenarios = zero_loss_scenarios or {}
    if any(len(kept) != world_size for kept in [*scenarios.values(), *zero_loss_scenarios.values()]):
        raise ValueError(f"each scenario needs one list of kept counts per rank ({world_size} ranks)")
    jobs = [("accumulate", name, kept, norm) for name, kept in scenarios.items() for norm in NORMALISATIONS]
    jobs += [("steps", name, kept, mode) for name, kept in zero_loss_scenarios.items() for mode in ZERO_LOSSES]
    per_rank = launch(_rank_jobs, jobs, world_size, what="data-parallel run", fail_rank=fail_rank, stall=stall,
                      start_timeout=start_timeout, stall_timeout=stall_timeout, out_dir=out_dir)  # fmt: skip
    return [record for records in per_rank for record in records]
