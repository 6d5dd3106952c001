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
