"""ddp_worker runs data parallel for real: notebook 07's gradient equalities, and failures that end quickly.

Two processes, gloo on 127.0.0.1. The scenarios run once for the module (starting the ranks takes seconds).
"""

import multiprocessing
import sys
from types import SimpleNamespace

import pytest
import torch

import ddp_worker

SCENARIOS = {"uneven": [[1, 2], [4, 3]], "one rank empty": [[2, 3], [0, 0]], "all empty": [[0, 0], [0, 0]]}


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("ranks")
    return ddp_worker.run(SCENARIOS, out_dir=str(out_dir)), out_dir


def gradients(records, scenario, normalisation):
    """The gradient each rank holds after DDP's all-reduce, rank by rank."""
    ranks = sorted(
        (r for r in records if (r["scenario"], r["normalisation"]) == (scenario, normalisation)),
        key=lambda r: r["rank"],
    )
    assert [r["rank"] for r in ranks] == [0, 1]
    return [torch.tensor(r["grad"]) for r in ranks], ranks


def test_every_rank_holds_the_same_gradient(ran):
    records, _ = ran
    for scenario in SCENARIOS:
        for normalisation in ddp_worker.NORMALISATIONS:
            (g0, g1), _ = gradients(records, scenario, normalisation)
            assert torch.equal(g0, g1), (scenario, normalisation)


def test_each_ranks_own_mean_differs_from_one_process(ran):
    (g, _), ranks = gradients(ran[0], "uneven", "own mean")
    assert [r["kept"] for r in ranks] == [3, 7]
    assert (g - ddp_worker.reference(SCENARIOS["uneven"])).abs().max() > 1e-2


def test_dividing_by_the_global_count_is_off_by_the_world_size(ran):
    (g, _), ranks = gradients(ran[0], "uneven", "sum / global")
    assert [r["total"] for r in ranks] == [10, 10]
    assert torch.allclose(g * 2, ddp_worker.reference(SCENARIOS["uneven"]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("scenario", ["uneven", "one rank empty", "all empty"])
def test_times_world_size_equals_one_process(ran, scenario):
    (g, _), _ = gradients(ran[0], scenario, "x world size")
    assert torch.allclose(g, ddp_worker.reference(SCENARIOS[scenario]), rtol=0, atol=1e-6)


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


@pytest.mark.skipif(sys.platform != "linux", reason="elsewhere gloo may print a notice about the network interface")
def test_ranks_write_nothing_to_stderr(ran):
    _, out_dir = ran
    assert [(out_dir / f"rank{r}.err").read_text() for r in (0, 1)] == ["", ""]


def test_a_failing_rank_raises_a_clear_error_instead_of_hanging():
    # The message names rank 1's error: run() stopped rank 0, which was waiting in all_reduce, instead of
    # waiting out the 60 s timeout (that would say "no rank reported an error within 60 s").
    with pytest.raises(RuntimeError, match=r"rank 1: RuntimeError: rank 1 failed on purpose \(fail_rank=1\)"):
        ddp_worker.run({"uneven": [[1, 2], [4, 3]]}, fail_rank=1, timeout=60)


def test_a_scenario_must_give_one_list_per_rank():
    with pytest.raises(ValueError, match="one list of kept counts per rank"):
        ddp_worker.run({"bad": [[1, 2]]})


def test_reference_is_the_guarded_token_mean_of_the_whole_batch():
    kept = SCENARIOS["uneven"]
    inputs, targets = ddp_worker.make_batch(kept)
    assert (targets != -100).sum(dim=(1, 2)).tolist() == [3, 7]
    model = ddp_worker.make_model()
    loss = torch.nn.functional.cross_entropy(model(inputs.reshape(-1, ddp_worker.FEATURES)), targets.flatten())
    loss.backward()
    assert torch.allclose(ddp_worker.reference(kept), ddp_worker.flat_grad(model), atol=1e-7)
    assert (ddp_worker.reference(SCENARIOS["all empty"]) == 0).all()


def test_a_run_that_outlives_its_timeout_is_stopped():
    with pytest.raises(RuntimeError, match=r"no rank reported an error within 0.5 s. Stopped: rank 0"):
        ddp_worker.run(SCENARIOS, timeout=0.5)  # far too short to even import torch in the ranks
    assert multiprocessing.active_children() == []  # no rank outlives the call


def test_a_rank_that_dies_before_it_starts_is_not_reported_as_a_timeout(tmp_path):
    # As when run() is called from a script without `if __name__ == "__main__":`: the ranks exit with
    # code 1 before they write anything.
    procs = [SimpleNamespace(exitcode=1), SimpleNamespace(exitcode=1)]
    message = ddp_worker._failure_message(str(tmp_path), procs, timeout=60, timed_out=False)
    assert "rank 0 exited before it started" in message and "within 60 s" not in message
    assert 'if __name__ == "__main__":' in message
