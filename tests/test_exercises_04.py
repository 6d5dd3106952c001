"""Notebook 04's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import torch
import torch.nn.functional as F

from course.exercises import run_check


def test_04_weighted_mean_names_division_by_the_kept_count():
    def by_count(losses, target, weight, ignore_index=-100):
        return losses.sum() / (target != ignore_index).sum()

    passed, message = run_check("04-weighted-mean", by_count)
    assert not passed and "not by the sum of their weights" in message


def test_04_weighted_mean_tries_a_sentinel_that_is_a_real_class():
    def negative_sentinel_only(losses, target, weight, ignore_index=-100):
        return losses.sum() / weight[target[target >= 0]].sum()

    assert not run_check("04-weighted-mean", negative_sentinel_only)[0]


def test_04_micro_batch_loss_says_a_detached_loss_cannot_carry_gradients():
    def detached(logits, target, num_items):
        return (F.cross_entropy(logits, target, reduction="sum") / num_items).detach()

    passed, message = run_check("04-micro-batch-loss", detached)
    assert not passed and "no .detach()" in message


def test_04_weighted_mean_names_kept_targets_found_by_a_nonzero_loss():
    # A kept target predicted right at score 1000 has a loss of exactly 0, but its weight is in the denominator.
    def by_nonzero_loss(losses, target, weight, ignore_index=-100):
        return losses.sum() / weight[target[losses != 0]].sum()

    passed, message = run_check("04-weighted-mean", by_nonzero_loss)
    assert not passed and "non-zero loss" in message and "target != ignore_index" in message


def test_04_weighted_mean_accepts_a_where_over_the_weights():
    def with_where(losses, target, weight, ignore_index=-100):
        kept = target != ignore_index
        return losses.sum() / torch.where(kept, weight[target.clamp(0, len(weight) - 1)], 0).sum()

    passed, message = run_check("04-weighted-mean", with_where)
    assert passed, message


def test_04_micro_batch_loss_names_an_unguarded_global_count():
    # The key points say to guard the global count: a batch that keeps nothing has num_items = 0.
    def unguarded(logits, target, num_items):
        return F.cross_entropy(logits, target, reduction="sum") / num_items

    passed, message = run_check("04-micro-batch-loss", unguarded)
    assert not passed and "num_items is 0" in message and "num_items.clamp(min=1)" in message


def test_04_micro_batch_loss_accepts_the_guarded_solution_and_a_python_max():
    def solution(logits, target, num_items):
        return F.cross_entropy(logits, target, reduction="sum") / num_items.clamp(min=1)

    def python_max(logits, target, num_items):
        return F.cross_entropy(logits, target, reduction="sum") / max(int(num_items), 1)

    for answer in (solution, python_max):
        passed, message = run_check("04-micro-batch-loss", answer)
        assert passed, message


def test_04_micro_batch_loss_rejects_guarded_means_over_the_micro_batches():
    def guarded_means(logits, target, num_items):
        kept = (target != -100).sum()
        return F.cross_entropy(logits, target, reduction="sum") / kept.clamp(min=1) / 3

    assert not run_check("04-micro-batch-loss", guarded_means)[0]


def test_04_weighted_mean_names_clamp_min_1_on_a_sum_of_weights_below_1():
    # Section 7: clamp(min=1) suits a count, but the kept weights can sum to less than 1 (here 0.085).
    def clamped(losses, target, weight, ignore_index=-100):
        return losses.sum() / weight[target[target != ignore_index]].sum().clamp(min=1)

    passed, message = run_check("04-weighted-mean", clamped)
    assert not passed and "clamp(min=1)" in message and "0.085" in message and "guard only 0" in message


def test_04_weighted_mean_accepts_guards_that_leave_a_sum_below_1_alone():
    def guarded_at_zero(losses, target, weight, ignore_index=-100):
        kept_weight = weight[target[target != ignore_index]].sum()
        return losses.sum() / torch.where(kept_weight > 0, kept_weight, 1)

    def tiny_clamp(losses, target, weight, ignore_index=-100):
        return losses.sum() / weight[target[target != ignore_index]].sum().clamp(min=1e-12)

    for answer in (guarded_at_zero, tiny_clamp):
        passed, message = run_check("04-weighted-mean", answer)
        assert passed, message


def test_04_guarded_mean_names_the_mean_of_row_means_and_the_mean_over_all_positions():
    def row_means(losses, mask):
        return (losses * mask).sum(1).div(mask.sum(1).clamp(min=1)).mean()

    def all_positions(losses, mask):
        return (losses * mask).mean()

    passed, message = run_check("04-guarded-mean", row_means)
    assert not passed and "got 2.2500" in message and "mean of the rows' means" in message
    passed, message = run_check("04-guarded-mean", all_positions)
    assert not passed and "got 1.0000" in message and "masked-out ones too" in message
