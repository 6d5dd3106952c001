"""Each exercise's solution passes its check, and the blank starter does not.

A starter is a code cell tagged `exercise`; its solution is the code block in the
`<details>` cell right after it. Both run in a namespace that holds only torch, F, math,
check and the names the course package offers, as the notebooks promise; `check` (imported from exercises) is replaced
by a recorder. The checkers' own behaviour (messages, hints, errors) is specified at the end.
"""

import doctest
import importlib
import math
import pathlib
import re

import nbformat
import pytest
import torch
import torch.nn.functional as F

from course import exercises, helpers, plotting
from course.exercises import check

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def exercise_cells():
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        for i, cell in enumerate(cells):
            if "exercise" in cell.get("metadata", {}).get("tags", []):
                following = cells[i + 1].source if i + 1 < len(cells) else ""
                solution = re.search(r"<details><summary>Solution</summary>.*?```python\n(.*?)```", following, re.S)
                yield pytest.param(cell.source, solution and solution.group(1), id=f"{path.name[:2]}-cell{i}")


EXERCISES = list(exercise_cells())


def run(source, monkeypatch):
    """Run a cell's code and return the (name, answer) it passed to check."""
    calls = []
    monkeypatch.setattr(exercises, "check", lambda name, answer: calls.append((name, answer)))
    namespace = {
        "torch": torch,
        "F": F,
        "math": math,
        **{k: getattr(m, k) for m in (helpers, plotting) for k in m.__all__},
    }
    namespace["check"] = exercises.check  # the recorder: notebook 00 imports check in its first cell
    exec(compile(source, "<exercise>", "exec"), namespace)
    assert len(calls) == 1, "the cell must call check(...) exactly once"
    return calls[0]


def test_every_notebook_has_an_exercise():
    assert {param.id[:2] for param in EXERCISES} == {path.name[:2] for path in NOTEBOOKS}


@pytest.mark.parametrize("starter, solution", EXERCISES)
def test_blank_starter_does_not_pass_its_check(starter, solution, monkeypatch):
    name, answer = run(starter, monkeypatch)
    passed, message = exercises.run_check(name, answer)
    assert not passed, message
    # A blank starter is told what is missing, not shown an error from inside its own code
    # (whose wording would also tie the stored output to one torch version).
    assert "your answer raised" not in message, message
    # ...and is not handed the hint before a first attempt: it would give the solution away.
    assert "not answered yet" in message and "Hint:" not in message, message


@pytest.mark.parametrize("starter, solution", EXERCISES)
def test_solution_passes_the_same_check(starter, solution, monkeypatch):
    assert solution, "an exercise cell must be followed by a <details> solution with a python block"
    name, _ = run(starter, monkeypatch)
    solved_name, answer = run(solution, monkeypatch)
    assert solved_name == name
    passed, message = exercises.run_check(name, answer)
    assert passed, message


# --- check: what a learner is told --------------------------------------------------------------


def test_docstring_examples_run_as_written():
    failures, tried = doctest.testmod(exercises)
    assert tried >= 1 and failures == 0


def test_every_checker_belongs_to_a_notebook_that_exists():
    numbers = {path.name[:2] for path in NOTEBOOKS}
    assert {name[:2] for name in exercises.exercise_names()} <= numbers


def test_check_prints_one_pass_line_for_a_right_answer(capsys):
    check("00-predict-the-loss", 500)
    assert capsys.readouterr().out == "PASS 00-predict-the-loss: correct.\n"


def test_check_prints_what_is_off_and_a_hint_for_a_wrong_answer(capsys):
    check("00-predict-the-loss", 2000 / 6)
    out = capsys.readouterr().out
    assert out.startswith("TRY AGAIN 00-predict-the-loss: not yet. 333.33 is either the gist's number")
    assert "Hint: " in out and out.count("\n") == 1


@pytest.mark.parametrize("answer", [float("nan"), float("inf")])
def test_check_says_a_number_that_is_not_finite_is_not_finite(answer, capsys):
    check("00-predict-the-loss", answer)
    out = capsys.readouterr().out
    assert f"expected a finite number, got {answer}" in out and "333.33" not in out


def test_check_accepts_a_numpy_number_or_a_one_element_tensor(capsys):
    import numpy as np

    check("00-predict-the-loss", np.float32(500))
    check("00-predict-the-loss", torch.tensor(500.0))
    assert capsys.readouterr().out.count("PASS") == 2


def test_check_says_when_nothing_was_answered_and_keeps_the_hint_for_later(capsys):
    check("00-predict-the-loss", None)
    out = capsys.readouterr().out
    assert "not answered yet" in out and "Hint:" not in out


def test_check_reports_an_error_raised_by_the_answer_without_a_traceback(capsys):
    def broken(targets, n):
        raise KeyError("oops")

    check("00-mask-prefix", broken)
    assert capsys.readouterr().out.startswith("TRY AGAIN 00-mask-prefix: your answer raised KeyError: 'oops'.")


def test_check_rejects_an_unknown_exercise_name():
    with pytest.raises(ValueError, match="unknown exercise 'no-such'"):
        check("no-such", 1)


def test_a_function_that_still_returns_none_is_not_answered_and_gets_no_hint():
    passed, message = exercises.run_check("00-mask-prefix", lambda targets, n: None)
    assert not passed and "not answered yet: <lambda> returned None" in message and "Hint:" not in message


def test_a_blank_found_deep_inside_a_checker_is_still_not_answered():
    # 04-micro-batch-loss calls the answer three times; the second call's None is enough.
    calls = []

    def half_done(logits, target, num_items):
        calls.append(1)
        return None if len(calls) == 2 else F.cross_entropy(logits, target, reduction="sum") / num_items

    assert "not answered yet" in exercises.run_check("04-micro-batch-loss", half_done)[1]


def test_every_checker_table_names_its_own_notebook():
    for path in sorted(pathlib.Path(exercises.__file__).parent.glob("exercises_[0-9][0-9].py")):
        table = importlib.import_module(f"course.{path.stem}").EXERCISES
        assert table and all(name.startswith(path.stem[-2:] + "-") for name in table), path.name
        assert all(callable(checker) and isinstance(hint, str) and hint for checker, hint in table.values())


def test_an_error_message_ending_in_a_full_stop_is_not_doubled():
    def raises(targets, n):
        raise IndexError("Target -1 is out of bounds.")

    assert "bounds. Hint" in exercises.run_check("00-mask-prefix", raises)[1]
