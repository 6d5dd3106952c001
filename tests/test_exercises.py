"""Each exercise's solution passes its check, and the blank starter does not.

A starter is a code cell tagged `exercise`; its solution is the code block in the
`<details>` cell right after it. Both run in a namespace that holds only torch, F, math and
the names from helpers, as the notebooks promise; `check` (also when imported from helpers)
is replaced by a recorder.
"""

import math
import pathlib
import re

import nbformat
import pytest
import torch
import torch.nn.functional as F

import helpers

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def exercises():
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        for i, cell in enumerate(cells):
            if "exercise" in cell.get("metadata", {}).get("tags", []):
                following = cells[i + 1].source if i + 1 < len(cells) else ""
                solution = re.search(r"<details><summary>Solution</summary>.*?```python\n(.*?)```", following, re.S)
                yield pytest.param(cell.source, solution and solution.group(1), id=f"{path.name[:2]}-cell{i}")


EXERCISES = list(exercises())


def run(source, monkeypatch):
    """Run a cell's code and return the (name, answer) it passed to check."""
    calls = []
    monkeypatch.setattr(helpers, "check", lambda name, answer: calls.append((name, answer)))
    namespace = {"torch": torch, "F": F, "math": math, **{k: getattr(helpers, k) for k in helpers.__all__}}
    exec(compile(source, "<exercise>", "exec"), namespace)
    assert len(calls) == 1, "the cell must call check(...) exactly once"
    return calls[0]


def test_every_notebook_has_an_exercise():
    assert {param.id[:2] for param in EXERCISES} == {path.name[:2] for path in NOTEBOOKS}


@pytest.mark.parametrize("starter, solution", EXERCISES)
def test_blank_starter_does_not_pass_its_check(starter, solution, monkeypatch):
    name, answer = run(starter, monkeypatch)
    passed, message = helpers.run_check(name, answer)
    assert not passed, message
    # A blank starter is told what is missing, not shown an error from inside its own code
    # (whose wording would also tie the stored output to one torch version).
    assert "your answer raised" not in message, message


@pytest.mark.parametrize("starter, solution", EXERCISES)
def test_solution_passes_the_same_check(starter, solution, monkeypatch):
    assert solution, "an exercise cell must be followed by a <details> solution with a python block"
    name, _ = run(starter, monkeypatch)
    solved_name, answer = run(solution, monkeypatch)
    assert solved_name == name
    passed, message = helpers.run_check(name, answer)
    assert passed, message
