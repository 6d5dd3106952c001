"""Notebook 00's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import torch

from course.exercises import run_check


def test_00_mask_prefix_refuses_float_targets():
    passed, message = run_check("00-mask-prefix", lambda t, n: torch.cat([-torch.ones(n), t[n:].float()]))
    assert not passed and "class ids" in message


def test_00_predict_the_loss_recognises_the_sum():
    assert "2000 is the sum" in run_check("00-predict-the-loss", 2000)[1]
