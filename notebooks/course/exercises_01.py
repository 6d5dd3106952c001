"""Notebook 01's exercise checkers (one-hot logits); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs. A blank answer (None, or a function that still returns None) never reaches
a checker: the front door says it is not answered yet.
"""

import math
import numbers

import torch
import torch.nn.functional as F

from course.helpers import seq_to_logits


def _check_min_score(answer):
    # The last case: 1 + x rounds to 1 once x is below about 1.1e-16, so log(1 + x) says 0 too early (section 5).
    # (2, log 2): at s = 0 the loss is exactly log 2, not below it, so the answer is 1.
    for classes, max_loss in ((10, 0.01), (2, 0.5), (2, 0.7), (1000, 0.001), (2, 2.0), (2, math.log(2)), (10, 1e-17)):
        expected = next(s for s in range(100) if math.log1p((classes - 1) * math.exp(-s)) < max_loss)
        try:
            got = answer(classes, max_loss)
        except (ZeroDivisionError, ValueError, OverflowError) as err:
            if max_loss > 1e-15 and not isinstance(err, ZeroDivisionError):
                raise
            raise AssertionError(
                f"for C={classes}, max_loss={max_loss} your answer raised {type(err).__name__} ({err}): "
                "e^max_loss - 1 rounds to 0 for so small a loss (a division by 0, a log of 0); "
                "math.expm1(max_loss) keeps it"
            ) from None
        plain = next(s for s in range(100) if math.log(1 + (classes - 1) * math.exp(-s)) < max_loss)
        if max_loss < 1e-15 and isinstance(got, numbers.Integral) and got < expected and got != plain:
            raise AssertionError(
                f"for C={classes}, max_loss={max_loss} expected {expected}, got {got!r}: the loss you computed "
                "rounded to 0 too early; a sum like 1 + (C-1)·e^-s loses so small a term, math.log1p keeps it "
                "(in a closed form, math.expm1(max_loss) keeps e^max_loss - 1)"
            )
        if got == plain != expected:
            raise AssertionError(
                f"for C={classes}, max_loss={max_loss} expected {expected}, got {got!r}: 1 + (C-1)·e^-s rounds to 1 "
                "there, so log(1 + ...) reads 0 too early; math.log1p keeps the small term (section 5)"
            )
        assert isinstance(got, numbers.Integral), f"return a whole-number score (an int), got {got!r}"
        assert got == expected, f"for C={classes}, max_loss={max_loss} expected {expected}, got {got!r}" + (
            ": the loss must be strictly below max_loss, and at that score it equals it"
            if isinstance(got, numbers.Integral) and math.log1p((classes - 1) * math.exp(-got)) == max_loss
            else ""
        )


def _check_batch_loss(answer):
    for s, classes, right, wrong in ((1.0, 10, 5, 1), (1000.0, 10, 2, 1), (1000.0, 10, 3, 0), (2.0, 3, 0, 4)):
        logits = seq_to_logits([0] * (right + wrong), classes, s)
        expected = F.cross_entropy(logits, torch.tensor([0] * right + [1] * wrong)).item()
        got = answer(s, classes, right, wrong)
        got = float(got)
        assert math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-6), (
            f"for s={s}, C={classes}, {right} right and {wrong} wrong expected {expected:.4f}, got {got:.4f}"
        )


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "01-min-score": (_check_min_score, "try s = 0, 1, 2, ... in log1p((C-1)·e^-s) until it drops below max_loss"),
    "01-batch-loss": (
        _check_batch_loss,
        "weigh each closed form by its number of rows, divide by all rows; at s=1000 use a form without e^s",
    ),
}
