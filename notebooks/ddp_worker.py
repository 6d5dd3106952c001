"""Data-parallel gradients of a masked loss, for real: the worker that notebook 07 starts.

``run(scenarios)`` starts ``world_size`` processes (gloo on 127.0.0.1, a free port), wraps a tiny model in
``DistributedDataParallel`` and, on each rank, accumulates its micro-batches (``no_sync()`` for all but the
last), dividing the summed loss in one of three ways (``NORMALISATIONS``): by the rank's own kept count, by
the global kept count (all-reduced before any backward), or by the global count times the world size.
Counts are guarded with ``clamp(min=1)``; the optimizer steps only when the global count is not 0.

A scenario gives the kept targets of each micro-batch on each rank: ``[[1, 2], [4, 0]]`` means rank 0 keeps
1 then 2 targets and rank 1 keeps 4 then 0. ``reference(kept)`` is the single-process gradient of the whole
batch. The processes always end: a failing rank makes ``run`` raise ``RuntimeError``, never hang.

>>> records = run({"uneven": [[1, 2], [4, 0]]})  # doctest: +SKIP
"""

import contextlib
import datetime
import json
import multiprocessing.connection
import os
import pathlib
import socket
import sys
import tempfile
import time
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

NORMALISATIONS = ("own mean", "sum / global", "x world size")
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
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def reference(kept):
    """Gradient of the guarded token mean over the whole batch, in one process."""
    model, (inputs, targets) = make_model(), make_batch(kept)
    total = F.cross_entropy(model(inputs.reshape(-1, FEATURES)), targets.flatten(), reduction="sum")
    (total / (targets != -100).sum().clamp(min=1)).backward()
    return flat_grad(model)


def train_step(rank, world, kept, normalisation):
    """One accumulated DDP step on this rank's micro-batches; returns what this rank saw."""
    model = DistributedDataParallel(make_model())
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    inputs, targets = (t[rank] for t in make_batch(kept))
    local = (targets != -100).sum()
    total = local.clone()
    dist.all_reduce(total)  # the global kept count, known on every rank before the first backward
    scale = {"own mean": 1 / local.clamp(min=1), "sum / global": 1 / total.clamp(min=1)}
    scale = scale.get(normalisation, world / total.clamp(min=1))  # "x world size"
    before, loss_sum = torch.cat([p.detach().flatten() for p in model.parameters()]), 0.0
    for m in range(len(inputs)):
        last = m == len(inputs) - 1  # DDP all-reduces (averages) the accumulated gradients in the last backward
        with contextlib.nullcontext() if last else model.no_sync():
            loss = F.cross_entropy(model(inputs[m]), targets[m], reduction="sum") * scale
            loss.backward()  # a rank with nothing kept still runs it: the all-reduce needs every rank
        loss_sum += loss.item()
    stepped = total.item() > 0  # the same decision on every rank: no step when nothing is kept anywhere
    if stepped:
        optimizer.step()
    changed = not torch.equal(before, torch.cat([p.detach().flatten() for p in model.parameters()]))
    return dict(kept=local.item(), total=total.item(), loss=loss_sum, grad=flat_grad(model).tolist(),
                stepped=stepped, changed=changed)  # fmt: skip


def _rank_main(rank, world, port, scenarios, out_dir, fail_rank, timeout):
    """One process: its stdout and stderr go to a file that run() shows only if something fails."""
    log = open(os.path.join(out_dir, f"rank{rank}.err"), "w")  # noqa: SIM115 (open until the process ends)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    try:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout))  # fmt: skip
        if rank == fail_rank:
            raise RuntimeError(f"rank {rank} failed on purpose (fail_rank={fail_rank})")
        records = [dict(scenario=name, normalisation=norm, rank=rank, **train_step(rank, world, kept, norm))
                   for name, kept in scenarios.items() for norm in NORMALISATIONS]  # fmt: skip
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump(records, f)
        dist.destroy_process_group()
    except BaseException:
        traceback.print_exc()
        log.flush()
        os._exit(1)  # at once: no exit handler that could wait for the other ranks
    log.flush()
    os._exit(0)  # likewise: the results are written, and interpreter shutdown was seen to stall for a minute


def free_port():
    """A TCP port that is free now on 127.0.0.1 (the operating system picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(scenarios, world_size=2, fail_rank=None, timeout=60.0, out_dir=None):
    """Run every scenario under every normalisation; return one record per (scenario, normalisation, rank).

    ``fail_rank=r`` makes rank r raise right after joining the process group, while the others are in
    DDP's first collective: run() stops them and raises RuntimeError with each failed rank's last error
    line. From a script (not a notebook), call run() under ``if __name__ == "__main__":``, as the spawn
    start method requires.
    ``timeout`` (seconds) bounds the collectives and the whole run. Each rank's output goes to
    ``rank<r>.err`` in ``out_dir`` (a temporary folder unless given), shown only when something fails.
    """
    if any(len(kept) != world_size for kept in scenarios.values()):
        raise ValueError(f"each scenario needs one list of kept counts per rank ({world_size} ranks)")
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = out_dir or tmp
        context = mp.get_context("spawn")  # works on Linux, macOS and Windows, and inside Jupyter
        args = (world_size, free_port(), scenarios, out_dir, fail_rank, timeout)
        procs = [context.Process(target=_rank_main, args=(rank, *args), daemon=True) for rank in range(world_size)]
        try:
            for p in procs:
                p.start()
            deadline = time.monotonic() + timeout
            timed_out = False
            while any(p.exitcode is None for p in procs):
                if time.monotonic() >= deadline:
                    timed_out = all(p.exitcode in (None, 0) for p in procs)  # nobody failed: the run ran out of time
                    break
                alive = [p.sentinel for p in procs if p.exitcode is None]  # exitcode asks the OS (waitpid)
                multiprocessing.connection.wait(alive, timeout=min(0.2, max(0.0, deadline - time.monotonic())))
                if any(p.exitcode not in (None, 0) for p in procs):  # a rank failed: the others cannot finish
                    deadline = min(deadline, time.monotonic() + 1.0)
        finally:  # also on an interrupt: no process outlives the call
            for p in (p for p in procs if p.pid is not None):  # the ones that started
                if p.is_alive():
                    p.kill()
                p.join()
        if any(p.exitcode != 0 for p in procs):
            raise RuntimeError(_failure_message(out_dir, procs, timeout, timed_out))
        records = []
        for rank in range(world_size):
            with open(os.path.join(out_dir, f"rank{rank}.json")) as f:
                records += json.load(f)
    return records


def _failure_message(out_dir, procs, timeout, timed_out):
    """The last error line of each rank that failed, then the ranks that were stopped, then every rank's output."""
    failed, stopped, outputs = [], [], []
    for rank, p in enumerate(procs):
        path = pathlib.Path(out_dir, f"rank{rank}.err")  # missing if the process died while starting
        text = path.read_text().strip() if path.exists() else ""
        if p.exitcode == 1 and text:
            failed.append(f"rank {rank}: {text.splitlines()[-1]}")
        elif p.exitcode == 1 and not path.exists():
            failed.append(
                f"rank {rank} exited before it started (see the traceback above; from a script, call run() "
                'under if __name__ == "__main__":)'
            )
        elif p.exitcode != 0:
            stopped.append(f"rank {rank} (exit code {p.exitcode})")
        outputs.append(f"--- output of rank {rank} ---\n{text}")
    if failed:
        summary = "; ".join(failed)
    elif timed_out:
        summary = f"no rank reported an error within {timeout:g} s"
    else:
        summary = "a rank ended without an error message"
    if stopped:
        summary += ". Stopped: " + ", ".join(stopped)
    return f"data-parallel run failed. {summary}\n\n" + "\n".join(outputs)
