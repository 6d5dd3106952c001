"""The exercise checkers' front door: ``check(name, answer)`` prints PASS, or what is off and a hint.

Each notebook's checkers live in their own module of this package, ``exercises_NN.py`` (NN: the
notebook's number), which ends in a table ``EXERCISES = {name: (checker, hint)}``. This module finds the
table from the name's first two characters, so a notebook needs only its own module beside this one.

A blank answer is caught here, not in each checker: the starter's ``None`` (or ``...``), or a
function of the learner's that still returns ``None``, is reported as "not answered yet", without a
hint, which would give the solution away before a first attempt.
"""

import functools
import importlib
import pathlib

__all__ = ["NotAnswered", "check", "exercise_names", "run_check"]

LATER = "(A hint comes with your first attempt.)"


class NotAnswered(Exception):
    """The answer, or what the learner's function returned, is still the starter's blank."""


def _guarded(answer):
    """The answer itself, or for a function, one that raises NotAnswered where it returns None."""
    if answer is None or answer is Ellipsis:
        raise NotAnswered("replace None with your answer")
    if not callable(answer) or isinstance(answer, type):
        return answer

    @functools.wraps(answer)
    def guarded(*args, **kwargs):
        result = answer(*args, **kwargs)
        if result is None:
            raise NotAnswered(f"{getattr(answer, '__name__', 'your function')} returned None: fill in its body")
        return result

    return guarded


def _table(name):
    """The checker table of the notebook that ``name`` belongs to ({} when there is none)."""
    number = name[:2] if isinstance(name, str) else ""
    if not (number.isdigit() and pathlib.Path(__file__).with_name(f"exercises_{number}.py").exists()):
        return {}
    return importlib.import_module(f"{__package__}.exercises_{number}").EXERCISES


def exercise_names():
    """Every exercise name, from every ``exercises_NN.py`` beside this file."""
    folder = pathlib.Path(__file__).parent
    return sorted(name for path in folder.glob("exercises_[0-9][0-9].py") for name in _table(path.stem[-2:]))


def run_check(name, answer):
    """Return ``(passed, message)`` for an exercise answer; ``check`` prints the message."""
    table = _table(name)
    if name not in table:
        raise ValueError(f"unknown exercise {name!r}; expected one of {exercise_names()}")
    checker, hint = table[name]
    try:
        checker(_guarded(answer))
    except NotAnswered as blank:
        return False, f"{name}: not answered yet: {blank}. {LATER}"
    except AssertionError as err:
        return False, f"{name}: not yet. {str(err).rstrip('.')}. Hint: {hint}"
    except Exception as err:  # the learner's code raised: say which error, no traceback
        first_line = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else ""
        return False, f"{name}: your answer raised {type(err).__name__}: {first_line}. Hint: {hint}"
    return True, f"{name}: correct."


def check(name, answer):
    """Check an exercise answer and print one line: a pass, or what failed and a hint.

    >>> check("00-predict-the-loss", 500)
    PASS 00-predict-the-loss: correct.
    >>> run_check("00-mask-prefix", lambda targets, n: None)[1].split(". (")[0]
    '00-mask-prefix: not answered yet: <lambda> returned None: fill in its body'
    """
    passed, message = run_check(name, answer)
    print(("PASS " if passed else "TRY AGAIN ") + message)
