"""Notebook 04's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

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
