"""parallel_worker runs notebook 11's demonstrations for real, and each result equals (or misses by the stated
factor) the gradient of one process on the whole batch.

gloo on 127.0.0.1. The 2-rank run and the 4-rank run each start once for the module (starting ranks takes
seconds). No test depends on how fast the machine is: a stalled rank is made to stall on purpose, at a
known stage, before which no stage takes long.
"""

import multiprocessing
import re
import sys

import pytest
import torch

from course import parallel_setups as ps
from course import parallel_worker as pw
from failure_runs import failure_runs


def close(grad, want):
    return torch.allclose(grad, want, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("two")
    results = pw.run(out_dir=str(out_dir))
    assert multiprocessing.active_children() == []  # every rank has ended
    return results, out_dir


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("four")
    results = pw.run_dp_cp(out_dir=str(out_dir))
    assert multiprocessing.active_children() == []
    return results, out_dir


def test_fsdp_averages_the_ranks_gradients_by_default(two):
    fsdp = two[0]["fsdp"]
    g0, g1 = ps.fsdp_local_grads()
    assert close(fsdp["local mean"]["grad"], (g0 + g1) / 2)
    assert not close(fsdp["local mean"]["grad"], g0 + g1)
    _, ref = ps.fsdp_reference()
    assert ps.rel_err(fsdp["local mean"]["grad"], ref) > 0.1  # a mean of the ranks' means: wrong direction


@pytest.mark.parametrize("case", ["W·S/K", "factor 1 on every module, S/K"])
def test_the_two_fsdp_fixes_equal_one_process(two, case):
    _, ref = ps.fsdp_reference()
    assert close(two[0]["fsdp"][case]["grad"], ref)


@pytest.mark.parametrize(
    "case, factor",
    [
        ("S/K", 0.5),
        ("factor 1 on the root only, S/K", 0.5),  # the root owns no parameters: still AVG
        ("factor 1 on every module, W·S/K", 2.0),  # both fixes at once
        ("force sum only, S/K", 0.5),  # SUM, then divided by the default factor, W
    ],
)
def test_the_fsdp_traps_scale_the_gradient(two, case, factor):
    _, ref = ps.fsdp_reference()
    assert close(two[0]["fsdp"][case]["grad"], ref * factor)


def test_a_float64_model_needs_no_force_sum_for_a_factor_of_1_on_gloo(two):
    # float64 is an "overflow risk" dtype for FSDP: SUM, then a division by the factor; no PREMUL_SUM
    _, ref = ps.fsdp_reference()
    assert close(two[0]["fsdp"]["float64, factor 1 without force sum"]["grad"], ref)


def test_gloo_refuses_premul_sum_on_every_rank(two):
    errors = two[0]["fsdp"]["factor 1 without force sum"]["error"]
    assert errors == ["RuntimeError: Cannot use ReduceOp.PREMUL_SUM with Gloo"] * 2


def test_fsdp_ranks_count_their_own_and_the_global_targets(two):
    record = two[0]["fsdp"]["W·S/K"]
    assert record["kept"] == list(ps.FSDP_KEPT) and record["total"] == [12, 12]


def test_a_mean_loss_fn_gives_a_mean_of_micro_batch_means_with_both_schedules(two):
    pp = two[0]["pp"]
    inputs, targets = ps.pp_batch()
    model = ps.make_mlp()
    with torch.no_grad():
        means = [torch.nn.functional.cross_entropy(model(x), y).item() for x, y in zip(inputs, targets, strict=True)]
    for case in ("GPipe, mean", "1F1B, mean"):
        assert pp[case]["losses"] == pytest.approx(means, abs=1e-6)
    assert close(pp["GPipe, mean"]["grad"], pp["1F1B, mean"]["grad"])
    _, ref = ps.pp_reference()
    assert ps.rel_err(pp["GPipe, mean"]["grad"], ref) > 0.1
    assert close(pp["GPipe, mean, scale_grads=False"]["grad"], pp["GPipe, mean"]["grad"] * len(ps.PP_KEPT))


@pytest.mark.parametrize("case", ["GPipe, sum/K", "1F1B, sum/K"])
def test_counting_k_before_step_and_passing_it_in_loss_kwargs_is_exact(two, case):
    loss, ref = ps.pp_reference()
    assert close(two[0]["pp"][case]["grad"], ref)
    assert sum(two[0]["pp"][case]["losses"]) == pytest.approx(loss, abs=1e-6)


def test_a_count_in_the_loss_fns_closure_is_exact_without_loss_kwargs(two):
    loss, ref = ps.pp_reference()
    assert close(two[0]["pp"]["GPipe, sum/K, closure"]["grad"], ref)
    assert sum(two[0]["pp"]["GPipe, sum/K, closure"]["losses"]) == pytest.approx(loss, abs=1e-6)


def test_loss_fn_runs_once_per_micro_batch_and_once_more_on_the_first_step(two):
    for name in pw.PP_CASES:
        assert two[0]["pp"][name]["calls"] == len(ps.PP_KEPT) + 1, name  # n per step() · steps, + 1 shape inference


def test_accumulated_steps_with_sum_over_k_are_exact_and_scale_grads_compounds(two):
    loss, ref = ps.pp_reference()
    pp = two[0]["pp"]
    assert close(pp["GPipe, 2 steps, sum/K"]["grad"], ref)
    assert sum(pp["GPipe, 2 steps, sum/K"]["losses"]) == pytest.approx(loss, abs=1e-6)
    g1, g2 = ps.pp_step_grads(2)  # n = 2 per step(): step 1's share is divided at both steps, step 2's once
    assert close(pp["GPipe, 2 steps, sum/K, scale_grads=True"]["grad"], g1 / 4 + g2 / 2)
    assert not close(pp["GPipe, 2 steps, sum/K, scale_grads=True"]["grad"], ref / 2)


def test_scale_grads_true_divides_a_sum_over_k_by_n_microbatches(two):
    _, ref = ps.pp_reference()
    assert close(two[0]["pp"]["GPipe, sum/K, scale_grads=True"]["grad"], ref / len(ps.PP_KEPT))


def test_dividing_by_k_after_step_logs_the_right_loss_over_k_times_the_gradient(two):
    loss, ref = ps.pp_reference()
    record = two[0]["pp"]["GPipe, sum, divided after step"]
    assert sum(record["losses"]) / record["K"] == pytest.approx(loss, abs=1e-6)
    assert close(record["grad"], ref * record["K"]) and record["K"] == 12


def test_context_parallel_shards_with_the_head_tail_load_balancer(two):
    # Each rank also checked that context_parallel sharded its buffers as ps.layout says.
    assert torch.equal(two[0]["head_tail_order"], torch.cat(ps.layout("head-tail", 2)))
    assert [p.tolist() for p in ps.layout("head-tail", 2)] == [[0, 1, 6, 7], [2, 3, 4, 5]]


def test_context_parallel_cuts_a_length_that_is_no_multiple_of_2_cp_into_contiguous_halves(two):
    assert two[0]["length_6_positions"] == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize(
    "case, lost, wrong",
    [
        ("local shift, contiguous", [(0, 3), (1, 3)], []),
        ("local shift, head-tail", [(0, 5), (1, 1)], [(0, 1)]),
        ("global shift, head-tail", [], []),
        ("global shift, contiguous", [], []),
    ],
)
def test_a_local_shift_loses_targets_and_head_tail_also_trains_a_wrong_one(two, case, lost, wrong):
    record = two[0]["cp"][case]
    _, labels = ps.token_batch(ps.CP_LENGTHS)
    got_lost, got_wrong = ps.shift_errors(record["targets"], record["positions"], ps.shift(labels))
    assert got_lost == lost and [w[:2] for w in got_wrong] == wrong
    _, ref = ps.token_reference(ps.CP_LENGTHS)
    assert close(record["grad"], ref) == (not lost)


def test_the_shards_kept_counts_depend_on_the_layout(two):
    assert two[0]["cp"]["global shift, head-tail"]["kept"] == [5, 6]
    assert two[0]["cp"]["global shift, contiguous"]["kept"] == [8, 3]


def test_context_parallel_normalisers(two):
    cp = two[0]["cp"]
    _, ref = ps.token_reference(ps.CP_LENGTHS)
    assert ps.rel_err(cp["local mean, head-tail"]["grad"], ref) < ps.rel_err(cp["local mean, contiguous"]["grad"], ref)
    assert ps.rel_err(cp["local mean, head-tail"]["grad"], ref) > 0.01
    assert close(cp["pre-shard count"]["grad"], ref)
    assert cp["pre-shard count reduced over CP"]["total"] == [22, 22]
    assert close(cp["pre-shard count reduced over CP"]["grad"], ref / 2)


def test_an_empty_context_parallel_shard(two):
    cp = two[0]["cp"]
    _, ref = ps.token_reference(ps.EMPTY_LENGTHS)
    mean = cp["empty shard, mean"]
    assert mean["kept"] == [2, 0] and torch.isnan(torch.tensor(mean["loss"][1]))
    assert close(mean["grad"], ref / 2)  # the empty rank's zero gradient, averaged in
    assert close(cp["empty shard, none × mask / mask.sum()"]["grad"], ref / 2)
    assert torch.isnan(cp["empty shard, unignored rows × mask / mask.sum()"]["grad"]).any()  # on every rank
    right = cp["empty shard, W·S/K_cp"]
    assert right["loss"][1] == 0 and torch.isfinite(right["grad"]).all() and close(right["grad"], ref)


def test_megatrons_rows_score_an_ignored_target_as_logsumexp_minus_max(two):
    vocab = two[0]["vocab"]
    rows, loss, ref = ps.vocab_reference()
    logits, targets = ps.vocab_logits(), torch.tensor(ps.VOCAB_TARGETS)
    got = vocab["rows, mean over N"]["rows"][0]
    kept = targets != -100
    assert torch.allclose(got[kept], rows[kept], atol=1e-6)
    want = logits.logsumexp(-1) - logits.max(-1).values
    assert torch.allclose(got[~kept], want[~kept], atol=1e-6)
    assert vocab["rows, mean over N"]["loss"][0] == pytest.approx(got.mean().item(), abs=1e-6)
    assert ps.rel_err(vocab["rows, mean over N"]["grad"].flatten(), ref.flatten()) > 0.1


def test_the_masked_vocab_parallel_loss_is_exact_and_k_must_not_be_reduced_over_tp(two):
    vocab = two[0]["vocab"]
    _, loss, ref = ps.vocab_reference()
    assert vocab["rows × mask, sum / K"]["loss"] == pytest.approx([loss, loss], abs=1e-6)
    assert close(vocab["rows × mask, sum / K"]["grad"], ref)
    assert close(vocab["rows × mask, sum / K reduced over TP"]["grad"], ref / 2)


def test_torchs_loss_parallel_honours_ignore_index_and_refuses_a_mean_on_a_2d_mesh(two):
    vocab = two[0]["vocab"]
    _, loss, ref = ps.vocab_reference()
    ignored = torch.tensor(ps.VOCAB_TARGETS) == -100
    for case in ("loss_parallel, sum / K", "loss_parallel, mean"):  # the mean on a 1-D mesh: over the kept targets
        assert vocab[case]["loss"] == pytest.approx([loss, loss], abs=1e-6)
        assert close(vocab[case]["grad"], ref) and vocab[case]["grad"][ignored].abs().sum() == 0
    refused = "NotImplementedError: loss_parallel() with reduction='mean' is only supported on one-dimensional"
    assert (
        vocab["loss_parallel, mean on a 2-D mesh"]["error"]
        == [f"{refused} DeviceMesh; got mesh with ndim=2. Use reduction='sum' or 'none' instead."] * 2
    )


@pytest.mark.parametrize(
    "case, totals, exact",
    [
        ("K over CP only, × 2", [13, 13, 6, 6], False),
        ("K over DP only, × 2", [9, 10, 9, 10], False),
        ("K over DP×CP, × 4", [19] * 4, True),
        ("pre-shard count over DP, × 4", [19] * 4, True),
    ],
)
def test_dp_cp_needs_k_over_every_rank_that_holds_different_targets(four, case, totals, exact):
    record = four[0][case]
    _, ref = ps.token_reference([n for lengths in ps.DP_CP_LENGTHS for n in lengths])
    assert record["kept"] == [5, 8, 4, 2] and record["total"] == totals
    assert close(record["grad"], ref) == exact


def test_dp_cp_counting_before_sharding_and_over_cp_counts_twice(four):
    record = four[0]["pre-shard count over DP×CP, × 4"]
    _, ref = ps.token_reference([n for lengths in ps.DP_CP_LENGTHS for n in lengths])
    assert record["total"] == [38] * 4 and close(record["grad"], ref / 2)


def test_k_over_cp_only_gives_the_mean_of_the_replicas_means(four):
    # Megatron's per-replica count (K over CP, loss x cp_size): each replica's token mean, then their mean.
    model, grads = ps.make_token_model(), []
    ids, labels = ps.token_batch([n for lengths in ps.DP_CP_LENGTHS for n in lengths])
    for replica in (0, 1):
        rows = slice(2 * replica, 2 * replica + 2)
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(ids[rows]).flatten(0, 1), ps.shift(labels)[rows].flatten()).backward()
        grads.append(ps.flat_grad(model.parameters()))
    assert close(four[0]["K over CP only, × 2"]["grad"], (grads[0] + grads[1]) / 2)


@pytest.mark.skipif(sys.platform != "linux", reason="elsewhere gloo may print a notice about the network interface")
def test_ranks_write_nothing_to_stderr(two, four):
    for out_dir, world in ((two[1], 2), (four[1], 4)):
        assert [(out_dir / f"rank{r}.err").read_text() for r in range(world)] == [""] * world


def test_each_rank_reports_every_demonstration_it_reaches(two):
    stages = (two[1] / "rank1.progress").read_text().splitlines()
    assert stages[:3] == ["spawned", "process group up", "FSDP: local mean"] and stages[-1] == "finished"
    assert "pipeline: 1F1B, sum/K" in stages and "vocabulary parallel: rows, mean over N" in stages


@pytest.fixture(scope="module")
def failures():
    # Rank 0 stops at the first FSDP case; rank 1 then waits in FSDP's first all-gather and nothing moves again.
    return failure_runs(
        {"fails": lambda: pw.run(fail_rank=1), "stalls": lambda: pw.run(stall=(0, "FSDP: local mean"), stall_timeout=1)}
    )


def test_a_failing_rank_raises_a_clear_error_instead_of_hanging(failures):
    err = str(failures[0]["fails"])
    assert re.search(r"2-rank run failed\. rank 1: RuntimeError: rank 1 failed on purpose", err), err
    assert "rank 1: process group up" in err


def test_a_rank_that_stalls_is_stopped_and_reported_with_where_each_rank_was(failures):
    err = str(failures[0]["stalls"])
    assert "no rank made progress for 1 s" in err, err
    assert "Last progress: rank 0: FSDP: local mean; rank 1: FSDP: local mean\n" in err, err


def test_no_rank_outlives_a_failed_run(failures):
    assert failures[1] == []


@pytest.mark.parametrize(
    "case",
    [
        "GPipe, mean",
        "GPipe, mean, scale_grads=False",
        "GPipe, sum/K, scale_grads=True",
        "GPipe, 2 steps, sum/K",
        "GPipe, 2 steps, sum/K, scale_grads=True",  # the compounding: all of .grad divided after every step()
    ],
)
def test_the_exercise_checkers_simulated_schedule_gives_what_torch_pipelining_gives(two, case):
    from course.exercises_11 import _schedule

    _, loss_name, scale_grads, steps = pw.PP_CASES[case]
    inputs, targets = ps.pp_batch()
    loss_fn = {"mean": pw._mean_loss, "sum/K": pw._sum_over_count}[loss_name]
    kwargs = {"K": (targets != -100).sum()} if loss_name == "sum/K" else {}
    model = ps.make_mlp()
    batches = list(zip(inputs.tensor_split(steps), targets.tensor_split(steps), strict=True))
    _schedule(model, batches, len(ps.PP_KEPT) // steps, loss_fn, kwargs, scale_grads)
    assert close(ps.flat_grad(model.parameters()), two[0]["pp"][case]["grad"])


@pytest.mark.parametrize("start", [pw.run, pw.run_dp_cp])
def test_an_older_torch_gets_a_clear_error_before_any_process_starts(monkeypatch, start):
    monkeypatch.setattr(torch, "__version__", "2.12.1+cpu")
    with pytest.raises(RuntimeError, match=r"needs torch 2\.13 or later .*loss_kwargs.*this is torch 2\.12\.1"):
        start()
    assert multiprocessing.active_children() == []
