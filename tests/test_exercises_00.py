"""Notebook 00's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import torch

from course.exercises import run_check


def test_00_mask_prefix_refuses_float_targets():
    passed, message = run_check("00-mask-prefix", lambda t, n: torch.cat([-torch.ones(n), t[n:].float()]))
    assert not passed and "class ids" in message


def test_00_predict_the_loss_names_both_sources_of_333():
    passed, message = run_check("00-predict-the-loss", 333.33)
    assert not passed and "the gist's number" in message and "2000 / 6" in message


def test_00_predict_the_loss_recognises_the_sum():
    assert "2000 is the sum" in run_check("00-predict-the-loss", 2000)[1]


def test_00_mask_prefix_keeps_the_length_when_the_prefix_is_longer_than_the_targets():
    passed, message = run_check("00-mask-prefix", lambda t, n: torch.cat([torch.full((n,), -1), t[n:]]))
    assert not passed and "keep the targets' length" in message


def test_00_mask_prefix_accepts_masked_fill_and_where():
    positions = lambda t, n: torch.arange(len(t)) < n  # noqa: E731
    assert run_check("00-mask-prefix", lambda t, n: t.masked_fill(positions(t, n), -1))[0]
    assert run_check("00-mask-prefix", lambda t, n: torch.where(positions(t, n), -1, t))[0]


def test_00_mask_prefix_refuses_the_input_returned_when_nothing_is_masked():
    passed, message = run_check(
        "00-mask-prefix", lambda t, n: t if n == 0 else torch.where(torch.arange(len(t)) < n, -1, t)
    )
    assert not passed and "new tensor" in message
