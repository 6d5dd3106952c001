"""Notebook 01's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import math

from course.exercises import run_check


def test_01_min_score_refuses_a_closed_form_that_goes_negative():
    def unclamped(C, max_loss):
        return math.ceil(math.log((C - 1) / (math.exp(max_loss) - 1)))

    assert not run_check("01-min-score", unclamped)[0]


def test_01_min_score_names_log_of_one_plus_a_tiny_term():
    def log_one_plus(C, max_loss):
        s = 0
        while math.log(1 + (C - 1) * math.exp(-s)) >= max_loss:
            s += 1
        return s

    passed, message = run_check("01-min-score", log_one_plus)
    assert not passed and "log1p" in message


def test_01_min_score_names_a_closed_form_whose_denominator_rounds_to_zero():
    def closed_form(C, max_loss):
        return max(0, math.floor(math.log((C - 1) / (math.exp(max_loss) - 1))) + 1)

    passed, message = run_check("01-min-score", closed_form)
    assert not passed and "expm1" in message


def test_01_min_score_accepts_log1p_and_the_closed_form_with_expm1():
    def loop(C, max_loss):
        s = 0
        while math.log1p((C - 1) * math.exp(-s)) >= max_loss:
            s += 1
        return s

    def closed_form(C, max_loss):
        return max(0, math.floor(math.log((C - 1) / math.expm1(max_loss))) + 1)

    assert run_check("01-min-score", loop)[0]
    assert run_check("01-min-score", closed_form)[0]


def test_01_min_score_names_rounding_in_a_loss_computed_another_way():
    import torch
    import torch.nn.functional as F

    def by_cross_entropy(C, max_loss):  # float64, yet the loss rounds to 0 before the true answer
        s = 0
        while (
            F.cross_entropy(torch.tensor([[float(s)] + [0.0] * (C - 1)], dtype=torch.float64), torch.tensor([0]))
            >= max_loss
        ):
            s += 1
        return s

    passed, message = run_check("01-min-score", by_cross_entropy)
    assert not passed and "log1p" in message


def test_01_min_score_names_expm1_for_a_log_of_a_difference_that_rounds_to_zero():
    def closed_form(C, max_loss):
        return max(0, math.floor(math.log(C - 1) - math.log(math.exp(max_loss) - 1)) + 1)

    passed, message = run_check("01-min-score", closed_form)
    assert not passed and "expm1" in message


def test_01_min_score_names_a_loss_equal_to_max_loss():
    def at_or_below(C, max_loss):
        s = 0
        while math.log1p((C - 1) * math.exp(-s)) > max_loss:
            s += 1
        return s

    passed, message = run_check("01-min-score", at_or_below)
    assert not passed and "strictly below" in message
