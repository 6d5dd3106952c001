"""Notebook 03's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import torch
import torch.nn.functional as F

from course.exercises import run_check


def test_03_out_of_range_wants_the_targets_shape():
    def flattened(target, num_classes, ignore_index=-100):
        target = target.flatten()
        return (target != ignore_index) & ((target < 0) | (target >= num_classes))

    assert not run_check("03-out-of-range", flattened)[0]


def _masked_mean(logits, target, ignore_index=-100):
    kept = target != ignore_index
    return (F.cross_entropy(logits, torch.where(kept, target, 0), reduction="none") * kept).sum() / kept.sum()


def test_03_masked_mean_refuses_a_loss_without_a_graph():
    passed, message = run_check("03-masked-mean", lambda *args, **kw: torch.tensor(_masked_mean(*args, **kw).item()))
    assert not passed and "no gradient" in message


def test_03_masked_mean_refuses_a_detached_loss():
    passed, message = run_check("03-masked-mean", lambda *args, **kw: _masked_mean(*args, **kw).detach())
    assert not passed and "no gradient" in message


def test_03_masked_mean_accepts_boolean_selection():
    def selected(logits, target, ignore_index=-100):
        kept = target != ignore_index
        return F.cross_entropy(logits[kept], target[kept])

    assert run_check("03-masked-mean", selected)[0]
    assert run_check("03-masked-mean", _masked_mean)[0]


def test_03_masked_mean_refuses_passing_ignore_index_through():
    def passed_through(logits, target, ignore_index=-100):
        return F.cross_entropy(logits, target, ignore_index=ignore_index)

    def through_the_module(logits, target, ignore_index=-100):
        return torch.nn.CrossEntropyLoss(ignore_index=ignore_index)(logits, target)

    for answer in (passed_through, through_the_module):
        passed, message = run_check("03-masked-mean", answer)
        assert not passed and "without passing ignore_index" in message and "ignore_index=-1" in message


def test_03_masked_mean_refuses_mapping_the_sentinel_to_the_default_ignore_index():
    def mapped(logits, target, ignore_index=-100):
        return F.cross_entropy(logits, torch.where(target == ignore_index, -100, target))

    def mapped_sum(logits, target, ignore_index=-100):
        kept = target != ignore_index
        return F.nll_loss(logits.log_softmax(-1), target.masked_fill(~kept, -100), reduction="sum") / kept.sum()

    for answer in (mapped, mapped_sum):
        passed, message = run_check("03-masked-mean", answer)
        assert not passed and "that call's ignore_index, so the loss skipped those targets for you" in message


def test_03_masked_mean_accepts_the_loss_module_with_a_mask():
    def with_module(logits, target, ignore_index=-100):
        kept = target != ignore_index
        losses = torch.nn.CrossEntropyLoss(reduction="none")(logits, torch.where(kept, target, 0))
        return (losses * kept).sum() / kept.sum()

    assert run_check("03-masked-mean", with_module)[0]
