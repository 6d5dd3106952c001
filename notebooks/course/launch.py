"""Start ranks on this machine and always get an answer: their results, or an error that says how far each got.

``launch(target, payload, world_size)`` starts ``world_size`` processes, joins them in a gloo process group on
127.0.0.1 at a port that is free when the call starts, and runs ``target(rank, world_size, payload, report)``
on each; the list it returns holds what ``target`` returned on each rank, in rank order (saved with
``torch.save`` by the rank, read back with ``weights_only=True``: plain numbers, strings, lists, dicts and
tensors). On Linux the ranks come from the ``forkserver`` start method: one server process imports torch and
the target's module (and torch._dynamo, which DDP and FSDP load on first use) once, and forks every rank of
this call and of later ones from it, so a second start costs little. Elsewhere (macOS, Windows) each rank is
started with ``spawn`` and imports torch itself. Both work inside Jupyter.

The processes always end, and a failing or stalled rank makes ``launch`` raise ``RuntimeError``, never hang.
Each rank writes every stage it reaches (``spawned``, ``process group up``, then whatever ``target`` passes
to ``report``) to ``rank<r>.progress``; the run is stopped when no rank has made progress for
``stall_timeout`` seconds (``start_timeout`` while the ranks are still starting, which reports nothing
while Python imports torch), and the error says where each rank was. A rank ends with ``os._exit`` once
its results are written and its output flushed: interpreter shutdown after torch.distributed was seen to
abort now and then, or to wait a minute on a store whose host had already gone.

>>> launch(my_target, {"n": 3}, world_size=2)  # doctest: +SKIP
"""

import datetime
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

__all__ = ["Progress", "failure_message", "free_port", "launch"]


class Progress:
    """Appends each stage this rank reaches to rank<r>.progress; launch() watches those files.

    ``job`` prefixes the stages (``"job 2/9 (...): micro-batch 1/2 backward done"``); ``stall=(rank, prefix)``
    makes that rank sleep for good once it reports a stage starting with ``prefix`` (for the tests).
    """

    def __init__(self, out_dir, rank, stall=None):
        self.file = open(os.path.join(out_dir, f"rank{rank}.progress"), "a")  # noqa: SIM115
        self.rank, self.stall, self.job = rank, stall, ""

    def __call__(self, stage):
        line = f"{self.job}: {stage}" if self.job else stage
        self.file.write(line + "\n")
        self.file.flush()
        if self.stall and self.stall[0] == self.rank and line.startswith(self.stall[1]):
            time.sleep(10**6)  # stall on purpose (for the tests): alive, but no further progress


def _rank_main(rank, world, port, target, payload, out_dir, fail_rank, stall, pg_timeout):
    """One process: its stdout and stderr go to a file that launch() shows only if something fails."""
    log = open(os.path.join(out_dir, f"rank{rank}.err"), "w")  # noqa: SIM115 (open until the process ends)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    try:
        report = Progress(out_dir, rank, stall)
        report("spawned")
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=pg_timeout))  # fmt: skip
        report("process group up")
        if rank == fail_rank:
            raise RuntimeError(f"rank {rank} failed on purpose (fail_rank={fail_rank})")
        result = target(rank, world, payload, report)
        report.job = ""
        # Every rank waits here for the others before it can exit: rank 0 hosts the store that a rank still
        # joining a subgroup (a device mesh's) needs, and a rank with less to do must not take it away.
        dist.barrier()
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
        # No destroy_process_group(): rank 0 hosts the group's store, and a rank that tears its group down
        # after rank 0 has exited can wait on that store until the timeout (seen with torch 2.4.1 on a busy
        # machine: ranks 0 and 1 finished, rank 2 never did). Every collective is done; os._exit ends it all.
        report("finished")
    except BaseException:
        traceback.print_exc()
        log.flush()
        # When it failed, so that the first failure (the cause) is named before the ones it set off.
        pathlib.Path(out_dir, f"rank{rank}.failed").write_text(repr(time.time()))
        os._exit(1)  # at once: no exit handler that could wait for the other ranks
    log.flush()
    os._exit(0)  # likewise: the results are written, and interpreter shutdown was seen to abort or stall


def _context(target):
    """forkserver on Linux (torch imported once, in the server; each rank forked from it), spawn elsewhere."""
    if sys.platform != "linux":
        return mp.get_context("spawn")  # macOS and Windows: each rank imports torch
    context = mp.get_context("forkserver")
    # Read when the server starts. DDP and FSDP import torch._dynamo on first use, about a second in each rank
    # of each start; imported once in the server, every rank forked from it has it.
    context.set_forkserver_preload(["course.launch", target.__module__, "torch._dynamo"])
    return context


def free_port():
    """A TCP port that is free now on 127.0.0.1 (the operating system picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(target, payload, world_size, *, what="parallel run", fail_rank=None, stall=None, start_timeout=300.0,
           stall_timeout=60.0, out_dir=None):  # fmt: skip
    """Run ``target(rank, world_size, payload, report)`` on ``world_size`` ranks; return their results by rank.

    ``target`` must be a function defined in an importable module (the ranks import it by name).
    ``fail_rank=r`` makes rank r raise right after joining the process group; ``stall=(r, stage)`` makes
    rank r stop making progress once it reports a stage starting with ``stage`` (both for the tests).
    launch() then stops every rank and raises RuntimeError starting with ``f"{what} failed."``: the failed
    rank's last error line, or how long nothing moved, and how far each rank got. From a script (not a
    notebook), call it under ``if __name__ == "__main__":``, as the spawn and forkserver start methods require. Each
    rank's output goes to ``rank<r>.err`` in ``out_dir`` (a temporary folder unless given), shown only
    when something fails.
    """
    if not (isinstance(world_size, int) and world_size >= 1):
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = out_dir or tmp
        context = _context(target)
        args = (world_size, free_port(), target, payload, out_dir, fail_rank, stall, start_timeout + stall_timeout)
        procs = [context.Process(target=_rank_main, args=(rank, *args), daemon=True) for rank in range(world_size)]
        stopped_because = None
        try:
            for p in procs:
                p.start()
            stopped_because = _watch(procs, out_dir, start_timeout, stall_timeout)
        finally:  # also on an interrupt: no process outlives the call
            for p in (p for p in procs if p.pid is not None):  # the ones that started
                if p.is_alive():
                    p.kill()
                p.join()
        if any(p.exitcode != 0 for p in procs):
            raise RuntimeError(failure_message(out_dir, procs, what, stopped_because))
        return [torch.load(os.path.join(out_dir, f"rank{rank}.pt"), weights_only=True) for rank in range(world_size)]


def _progress(out_dir, rank):
    """The stages rank ``rank`` has reported so far."""
    path = pathlib.Path(out_dir, f"rank{rank}.progress")
    return path.read_text().splitlines() if path.exists() else []


def _watch(procs, out_dir, start_timeout, stall_timeout):
    """Wait until every rank has ended; return None, or why the ranks still running must be stopped."""
    seen, last_progress, stop_at = None, time.monotonic(), None
    while any(p.exitcode is None for p in procs):  # exitcode asks the OS (waitpid)
        now = time.monotonic()
        progress = [len(_progress(out_dir, rank)) for rank in range(len(procs))]
        if progress != seen:
            seen, last_progress = progress, now
        starting = not all(progress)  # a rank that has not reported "spawned" is still importing torch
        limit = start_timeout if starting else stall_timeout
        if now - last_progress >= limit:
            return f"no rank made progress for {limit:g} s" + (" (while the ranks were starting)" if starting else "")
        if stop_at is None and any(p.exitcode not in (None, 0) for p in procs):
            stop_at = now + 1.0  # a rank failed: the others cannot finish; give them a second to report their error
        if stop_at is not None and now >= stop_at:
            return None
        alive = [p.sentinel for p in procs if p.exitcode is None]
        multiprocessing.connection.wait(alive, timeout=0.2)
    return None


def _failed_at(out_dir, rank):
    """When rank ``rank`` failed (its own clock reading), or infinity when it did not say."""
    path = pathlib.Path(out_dir, f"rank{rank}.failed")
    return float(path.read_text()) if path.exists() else float("inf")


def failure_message(out_dir, procs, what="parallel run", stopped_because=None):
    """Why the run failed (why it was stopped, or the first rank's error, then the errors that followed), how far
    each rank got, and every rank's output."""
    failed, stopped, places, outputs = [], [], [], []
    for rank, p in enumerate(procs):
        path = pathlib.Path(out_dir, f"rank{rank}.err")  # missing if the process died while starting
        text = path.read_text().strip() if path.exists() else ""
        if p.exitcode == 1 and text:
            failed.append((_failed_at(out_dir, rank), f"rank {rank}: {text.splitlines()[-1]}"))
        elif p.exitcode == 1 and not path.exists():
            failed.append(
                (
                    float("inf"),
                    f"rank {rank} exited before it started (see the traceback above; from a script, call run() "
                    'under if __name__ == "__main__":)',
                )
            )
        elif p.exitcode != 0:
            stopped.append(f"rank {rank} (exit code {p.exitcode})")
        stages = _progress(out_dir, rank)
        places.append(f"rank {rank}: {stages[-1] if stages else 'starting (Python was still importing torch)'}")
        outputs.append(f"--- output of rank {rank} ---\n{text}")
    # A rank that fails takes the others' connections with it: name the first failure, then the ones it set off.
    errors = [line for _, line in sorted(failed, key=lambda item: item[0])]
    if stopped_because:  # the ranks were stopped; errors the stop itself caused come after the reason
        summary = stopped_because + (f" (then {'; '.join(errors)})" if errors else "")
    else:
        summary = "; then ".join(errors) or "a rank ended without an error message"
    if stopped:
        summary += ". Stopped: " + ", ".join(stopped)
    return f"{what} failed. {summary}. Last progress: {'; '.join(places)}\n\n" + "\n".join(outputs)
