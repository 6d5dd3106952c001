"""Notebook 03's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

from course.exercises import run_check


def test_03_out_of_range_wants_the_targets_shape():
    def flattened(target, num_classes, ignore_index=-100):
        target = target.flatten()
        return (target != ignore_index) & ((target < 0) | (target >= num_classes))

    assert not run_check("03-out-of-range", flattened)[0]
