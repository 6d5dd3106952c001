"""Each exercise's solution passes its check, and the blank starter does not.

A starter is a code cell tagged `exercise`; its solution is the code block in the
`<details>` cell right after it. Both run in a namespace that holds only torch, F, math,
check and the names from helpers, as the notebooks promise; `check` (imported from exercises) is replaced
by a recorder. The checkers' own behaviour (messages, hints, errors) is specified at the end.
"""

import doctest
import math
import pathlib
import re

import nbformat
import pytest
import torch
import torch.nn.functional as F

import exercises
import helpers
from exercises import check

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
    namespace = {"torch": torch, "F": F, "math": math, **{k: getattr(helpers, k) for k in helpers.__all__}}
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
    assert {name[:2] for name in exercises._EXERCISES} <= numbers


def test_check_prints_one_pass_line_for_a_right_answer(capsys):
    check("00-predict-the-loss", 500)
    assert capsys.readouterr().out == "PASS 00-predict-the-loss: correct.\n"


def test_check_prints_what_is_off_and_a_hint_for_a_wrong_answer(capsys):
    check("00-predict-the-loss", 2000 / 6)
    out = capsys.readouterr().out
    assert out.startswith("TRY AGAIN 00-predict-the-loss: not yet. 333.33 divides by all 6 positions")
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


# --- the checkers catch the mistakes the lesson warns against ------------------------------------


def test_00_mask_prefix_refuses_float_targets():
    passed, message = exercises.run_check("00-mask-prefix", lambda t, n: torch.cat([-torch.ones(n), t[n:].float()]))
    assert not passed and "class ids" in message


def test_00_predict_the_loss_recognises_the_sum():
    assert "2000 is the sum" in exercises.run_check("00-predict-the-loss", 2000)[1]


def test_01_min_score_refuses_a_closed_form_that_goes_negative():
    def unclamped(C, max_loss):
        return math.ceil(math.log((C - 1) / (math.exp(max_loss) - 1)))

    assert not exercises.run_check("01-min-score", unclamped)[0]


def test_02_collate_refuses_an_attention_mask_built_by_value():
    from torch.nn.utils.rnn import pad_sequence

    def by_value(batch):
        ids = pad_sequence([b["input_ids"] for b in batch], batch_first=True, padding_value=0)
        labels = pad_sequence([b["labels"] for b in batch], batch_first=True, padding_value=-100)
        return {"input_ids": ids, "labels": labels, "attention_mask": ids != 0}

    passed, message = exercises.run_check("02-collate", by_value)
    assert not passed and "use the lengths" in message


def test_03_out_of_range_wants_the_targets_shape():
    def flattened(target, num_classes, ignore_index=-100):
        target = target.flatten()
        return (target != ignore_index) & ((target < 0) | (target >= num_classes))

    assert not exercises.run_check("03-out-of-range", flattened)[0]


def test_04_weighted_mean_names_division_by_the_kept_count():
    def by_count(losses, target, weight, ignore_index=-100):
        return losses.sum() / (target != ignore_index).sum()

    passed, message = exercises.run_check("04-weighted-mean", by_count)
    assert not passed and "not by the sum of their weights" in message


def test_04_weighted_mean_tries_a_sentinel_that_is_a_real_class():
    def negative_sentinel_only(losses, target, weight, ignore_index=-100):
        return losses.sum() / weight[target[target >= 0]].sum()

    assert not exercises.run_check("04-weighted-mean", negative_sentinel_only)[0]


def test_04_micro_batch_loss_says_a_detached_loss_cannot_carry_gradients():
    def detached(logits, target, num_items):
        return (F.cross_entropy(logits, target, reduction="sum") / num_items).detach()

    passed, message = exercises.run_check("04-micro-batch-loss", detached)
    assert not passed and "no .detach()" in message


def test_an_error_message_ending_in_a_full_stop_is_not_doubled():
    def raises(targets, n):
        raise IndexError("Target -1 is out of bounds.")

    assert "bounds. Hint" in exercises.run_check("00-mask-prefix", raises)[1]


def _perplexity_parts(batches):
    total = sum(F.cross_entropy(lg.flatten(0, 1), lb.flatten(), reduction="sum") for lg, lb in batches)
    kept = sum((lb != -100).sum() for _, lb in batches)
    return total, kept


def test_05_perplexity_says_the_exp_is_missing():
    passed, message = exercises.run_check(
        "05-perplexity", lambda b: (lambda t, k: (t / k).item())(*_perplexity_parts(b))
    )
    assert not passed and "take its exp" in message


def test_05_perplexity_names_the_mean_of_guarded_batch_means():
    def guarded_means(batches):
        means = [_perplexity_parts([b])[0] / _perplexity_parts([b])[1].clamp(min=1) for b in batches]
        return math.exp(sum(means).item() / len(means))

    passed, message = exercises.run_check("05-perplexity", guarded_means)
    assert not passed and "an average of per-batch values" in message


def test_06_assistant_labels_names_a_shift():
    def shifted(input_ids, assistant_id, end_id):
        labels = torch.full_like(input_ids, -100)
        for b, row in enumerate(input_ids.tolist()):
            inside = False
            for t, token in enumerate(row):
                if inside and t > 0:
                    labels[b, t - 1] = token  # already shifted, as notebook 02's targets
                inside = (inside and token != end_id) or token == assistant_id
        return labels

    passed, message = exercises.run_check("06-assistant-labels", shifted)
    assert not passed and "shifted by one" in message


def _z_parts(logits, targets):
    kept = targets != -100
    return kept, F.cross_entropy(logits, targets, reduction="sum")


def test_07_loss_with_z_names_olmos_mean_over_every_row():
    def olmo(logits, targets, num_items, z_weight=1e-4):
        kept, ce = _z_parts(logits, targets)
        return ce / num_items.clamp(min=1) + z_weight * (logits.logsumexp(dim=-1).pow(2) * kept).mean()

    passed, message = exercises.run_check("07-loss-with-z", olmo)
    assert not passed and "per micro-batch" in message


def test_07_loss_with_z_says_why_a_row_of_finfo_min_gives_nan():
    def multiply_by_mask(logits, targets, num_items, z_weight=1e-4):
        kept, ce = _z_parts(logits, targets)
        return (ce + z_weight * (logits.logsumexp(dim=-1).pow(2) * kept).sum()) / num_items.clamp(min=1)

    passed, message = exercises.run_check("07-loss-with-z", multiply_by_mask)
    assert not passed and "select the kept rows before logsumexp" in message


def test_07_chunked_eval_loss_wants_no_gradient_graph():
    def with_graph(hidden, weight, targets, chunk_size):
        mask = targets != -100
        total = sum(
            F.cross_entropy(h @ weight.T, y, reduction="sum")
            for h, y in zip(hidden[mask].split(chunk_size), targets[mask].split(chunk_size), strict=True)
        )
        return torch.as_tensor(total) / mask.sum().clamp(min=1)

    passed, message = exercises.run_check("07-chunked-eval-loss", with_graph)
    assert not passed and "torch.no_grad()" in message
