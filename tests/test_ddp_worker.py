"""ddp_worker runs data parallel for real: notebook 07's gradient equalities, and failures that end with a clear error.

gloo on 127.0.0.1. Each set of scenarios runs once for the module (starting the ranks takes seconds). No test
here depends on how fast the machine is: a stalled rank is made to stall on purpose, at a known stage.
"""

import re
import sys
from types import SimpleNamespace

import pytest
import torch

from course import ddp_worker, launch
from failure_runs import failure_runs

SCENARIOS = {
    "uneven": [[1, 2], [4, 3]],
    "three micro-batches": [[1, 0, 2], [4, 3, 1]],  # M = 3 micro-batches per rank, W = 2 ranks: x W is not x M
    "one rank empty": [[2, 3], [0, 0]],
    "all empty": [[0, 0], [0, 0]],
}
THREE_RANKS = {"three ranks": [[1, 2], [0, 0], [3, 1]]}  # W = 3, M = 2, one rank empty
JOIN_STALL = 2 if sys.platform == "linux" else 5  # seconds; see the fixture failures
ZERO_LOSS = {"each rank empty once": [[3, 0], [0, 4]]}  # rank 0 keeps 3 then 0 targets, rank 1 keeps 0 then 4


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("ranks")
    return ddp_worker.run(SCENARIOS, zero_loss_scenarios=ZERO_LOSS, out_dir=str(out_dir)), out_dir


@pytest.fixture(scope="module")
def ran_three():
    return ddp_worker.run(THREE_RANKS, world_size=3)


def gradients(records, scenario, normalisation, world=2):
    """The gradient each rank holds after DDP's all-reduce, rank by rank."""
    ranks = sorted(
        (r for r in records if (r["scenario"], r.get("normalisation")) == (scenario, normalisation)),
        key=lambda r: r["rank"],
    )
    assert [r["rank"] for r in ranks] == list(range(world))
    return [torch.tensor(r["grad"]) for r in ranks], ranks


def test_every_rank_holds_the_same_gradient(ran, ran_three):
    for records, scenarios, world in ((ran[0], SCENARIOS, 2), (ran_three, THREE_RANKS, 3)):
        for scenario in scenarios:
            for normalisation in ddp_worker.NORMALISATIONS:
                grads, _ = gradients(records, scenario, normalisation, world)
                assert all(torch.equal(grads[0], g) for g in grads), (scenario, normalisation)


def test_each_ranks_own_mean_differs_from_one_process(ran):
    (g, _), ranks = gradients(ran[0], "uneven", "own mean")
    assert [r["kept"] for r in ranks] == [3, 7]
    assert (g - ddp_worker.reference(SCENARIOS["uneven"])).abs().max() > 1e-2


@pytest.mark.parametrize("scenario", ["uneven", "three micro-batches"])
def test_dividing_by_the_global_count_is_off_by_the_world_size(ran, scenario):
    (g, _), ranks = gradients(ran[0], scenario, "sum / global")
    assert ranks[0]["total"] == sum(map(sum, SCENARIOS[scenario]))
    assert torch.allclose(g * 2, ddp_worker.reference(SCENARIOS[scenario]), rtol=0, atol=1e-6)


def test_with_three_ranks_dividing_by_the_global_count_is_off_by_three(ran_three):
    (g, *_), ranks = gradients(ran_three, "three ranks", "sum / global", world=3)
    assert [r["kept"] for r in ranks] == [3, 0, 4] and ranks[0]["total"] == 7
    assert torch.allclose(g * 3, ddp_worker.reference(THREE_RANKS["three ranks"]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("normalisation", ["x world size", "grads x W/K"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_times_world_size_equals_one_process(ran, scenario, normalisation):
    # "three micro-batches" has M = 3 and W = 2: a factor of M instead of W would give 1.5 times the gradient.
    (g, _), _ = gradients(ran[0], scenario, normalisation)
    assert torch.allclose(g, ddp_worker.reference(SCENARIOS[scenario]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("normalisation", ["x world size", "grads x W/K"])
def test_with_three_ranks_times_world_size_equals_one_process(ran_three, normalisation):
    # W = 3 and M = 2: a factor of M instead of W would give 2/3 of the gradient.
    (g, *_), _ = gradients(ran_three, "three ranks", normalisation, world=3)
    assert torch.allclose(g, ddp_worker.reference(THREE_RANKS["three ranks"]), rtol=0, atol=1e-6)


def test_an_empty_rank_still_steps_with_the_others(ran):
    for normalisation in ddp_worker.NORMALISATIONS:
        _, ranks = gradients(ran[0], "one rank empty", normalisation)
        assert [r["kept"] for r in ranks] == [5, 0]
        assert all(r["stepped"] and r["changed"] for r in ranks)


def test_no_step_and_no_change_when_no_rank_keeps_a_target(ran):
    for normalisation in ddp_worker.NORMALISATIONS:
        (g, _), ranks = gradients(ran[0], "all empty", normalisation)
        assert (g == 0).all() and all(r["loss"] == 0 for r in ranks)
        assert not any(r["stepped"] or r["changed"] for r in ranks)


def zero_loss_grads(records, zero_loss):
    """{(rank, step): gradient} for the zero-loss scenario."""
    return {(r["rank"], r["step"]): torch.tensor(r["grad"]) for r in records if r.get("zero_loss") == zero_loss}


def test_a_zero_loss_through_the_model_keeps_every_step_right(ran):
    grads, kept = zero_loss_grads(ran[0], "through the model"), ZERO_LOSS["each rank empty once"]
    for step in (0, 1):
        want = ddp_worker.reference(kept, [step])
        assert all(torch.allclose(grads[rank, step], want, rtol=0, atol=1e-6) for rank in (0, 1))


def test_a_detached_zero_loss_silently_pairs_one_steps_all_reduce_with_anothers(ran):
    grads, kept = zero_loss_grads(ran[0], "detached"), ZERO_LOSS["each rank empty once"]
    step0, step1 = ddp_worker.reference(kept, [0]), ddp_worker.reference(kept, [1])
    assert torch.equal(grads[0, 0], grads[1, 1])  # rank 0's step 0 and rank 1's step 1 met in one all-reduce
    assert torch.allclose(grads[0, 0], step0 + step1, rtol=0, atol=1e-6)  # both steps' gradients, mixed
    assert (grads[0, 1] == 0).all() and (grads[1, 0] == 0).all()  # the skipped steps hold no gradient


@pytest.mark.skipif(sys.platform != "linux", reason="elsewhere gloo may print a notice about the network interface")
def test_ranks_write_nothing_to_stderr(ran):
    _, out_dir = ran
    assert [(out_dir / f"rank{r}.err").read_text() for r in (0, 1)] == ["", ""]


def test_each_rank_reports_its_progress_stage_by_stage(ran):
    _, out_dir = ran
    stages = (out_dir / "rank1.progress").read_text().splitlines()
    assert stages[:2] == ["spawned", "process group up"] and stages[-1] == "finished"
    assert "job 1/18 ('uneven', own mean): micro-batch 2/2 backward done" in stages


@pytest.fixture(scope="module")
def failures():
    batch = {"uneven": [[1, 2], [4, 3]]}
    return failure_runs(
        {
            "fails": lambda: ddp_worker.run(batch, fail_rank=1),
            # Rank 0 stops after "spawned", so rank 1 cannot get past joining the process group: nothing moves
            # again, however fast or slow the machine.
            "stalls": lambda: ddp_worker.run(batch, stall=(0, "spawned"), stall_timeout=1),
            # Not 1 s: the ranks must join the process group first. Spawned ranks (macOS, Windows) each import
            # torch, and on a busy machine (load 19 on 2 cores) that rendezvous once took over a second, so the run
            # was stopped at "spawned", before this stall; ranks forked from a server that holds torch join at once.
            "stalls after joining": lambda: ddp_worker.run(
                batch, stall=(1, "process group up"), stall_timeout=JOIN_STALL
            ),
        }
    )


def test_a_failing_rank_raises_a_clear_error_instead_of_hanging(failures):
    # The message names rank 1's error: run() stopped rank 0, which was waiting in DDP's first collective.
    err = str(failures[0]["fails"])
    assert re.search(r"rank 1: RuntimeError: rank 1 failed on purpose \(fail_rank=1\)", err), err
    assert "rank 1: process group up" in err  # how far it got


def test_a_rank_that_stalls_is_stopped_and_reported_with_its_last_stage(failures):
    err = str(failures[0]["stalls"])
    assert "no rank made progress for 1 s" in err and "Last progress: rank 0: spawned; rank 1: spawned" in err, err


def test_a_rank_that_stalls_after_joining_is_reported_where_it_stopped(failures):
    err = str(failures[0]["stalls after joining"])
    assert f"no rank made progress for {JOIN_STALL} s" in err and "rank 1: process group up\n" in err, err


def test_no_rank_outlives_a_failed_run(failures):
    assert failures[1] == []


def test_a_scenario_must_give_one_list_per_rank():
    with pytest.raises(ValueError, match="one list of kept counts per rank"):
        ddp_worker.run({"bad": [[1, 2]]})
    with pytest.raises(ValueError, match="one list of kept counts per rank"):
        ddp_worker.run({}, zero_loss_scenarios={"bad": [[1, 2]]}, world_size=3)


def test_reference_is_the_guarded_token_mean_of_the_whole_batch():
    kept = SCENARIOS["uneven"]
    inputs, targets = ddp_worker.make_batch(kept)
    assert (targets != -100).sum(dim=(1, 2)).tolist() == [3, 7]
    model = ddp_worker.make_model()
    loss = torch.nn.functional.cross_entropy(model(inputs.reshape(-1, ddp_worker.FEATURES)), targets.flatten())
    loss.backward()
    assert torch.allclose(ddp_worker.reference(kept), ddp_worker.flat_grad(model), atol=1e-7)
    assert (ddp_worker.reference(SCENARIOS["all empty"]) == 0).all()


def test_a_rank_that_dies_before_it_starts_is_not_reported_as_a_stall(tmp_path):
    # As when run() is called from a script without `if __name__ == "__main__":`: the ranks exit with
    # code 1 before they write anything.
    procs = [SimpleNamespace(exitcode=1), SimpleNamespace(exitcode=1)]
    message = launch.failure_message(str(tmp_path), procs)
    assert "rank 0 exited before it started" in message and "progress for" not in message
    assert 'if __name__ == "__main__":' in message
    assert "rank 1: starting (Python was still importing torch)" in message


def test_loss_to_backprop_names_the_normalisations_it_knows():
    with pytest.raises(ValueError, match="unknown normalisation 'mean of means'.*own mean"):
        ddp_worker.loss_to_backprop(torch.tensor(1.0), "mean of means", torch.tensor(1), torch.tensor(2), 2)


def failed_ranks(folder, errors):
    """Rank files as launch() leaves them: each rank's last error line and when it failed (None: it did not say)."""
    for rank, (line, when) in enumerate(errors):
        (folder / f"rank{rank}.err").write_text(f"Traceback ...\n{line}\n")
        if when is not None:
            (folder / f"rank{rank}.failed").write_text(repr(when))
    return [SimpleNamespace(exitcode=1) for _ in errors]


def test_the_first_rank_to_fail_is_named_first_and_the_failures_it_set_off_after_it(tmp_path):
    procs = failed_ranks(tmp_path, [("RuntimeError: Connection closed by peer", 20.0), ("ValueError: bad batch", 10.0)])
    message = launch.failure_message(str(tmp_path), procs, what="run")
    assert message.startswith("run failed. rank 1: ValueError: bad batch; then rank 0: RuntimeError: Connection")


def test_a_stopped_run_gives_its_reason_before_the_errors_that_stopping_it_caused(tmp_path):
    procs = failed_ranks(tmp_path, [("RuntimeError: Connection closed by peer", None)])
    message = launch.failure_message(str(tmp_path), procs, what="run", stopped_because="no rank made progress for 1 s")
    assert message.startswith("run failed. no rank made progress for 1 s (then rank 0: RuntimeError: Connection")


@pytest.mark.parametrize("platform, method", [("linux", "forkserver"), ("darwin", "spawn"), ("win32", "spawn")])
def test_ranks_are_forked_from_a_server_on_linux_and_spawned_elsewhere(monkeypatch, platform, method):
    monkeypatch.setattr(launch.sys, "platform", platform)
    assert launch._context(ddp_worker.loss_to_backprop).get_start_method() == method
