"""Notebook 09's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why).
"""

import json
import pathlib

import torch

from course.exercises import run_check
from course.exercises_09 import FIX_IDS, FIX_WANT


def test_09_fix_the_batch_names_padding_left_in():
    labels = torch.tensor(FIX_WANT)
    labels[0, 9] = 0  # labels copied from input_ids, padding included
    passed, message = run_check("09-fix-the-batch", labels)
    assert not passed and "[pad-kept]" in message


def test_09_fix_the_batch_names_an_end_token_left_out():
    labels = torch.tensor(FIX_WANT)
    labels[FIX_IDS == 2] = -100  # masked by value, as a pad = EOS collator does
    passed, message = run_check("09-fix-the-batch", labels)
    assert not passed and "[end-not-trained]" in message


def test_09_fix_the_batch_names_a_trained_header():
    labels = torch.tensor(FIX_WANT)
    labels[0, 5] = 7  # the `assistant` of the header kept
    passed, message = run_check("09-fix-the-batch", labels)
    assert not passed and "belongs to the prompt or header" in message


def test_09_fix_the_batch_accepts_any_label_at_t_0_which_the_shift_drops():
    for first in (FIX_IDS[:, 0], torch.tensor([7, -100])):  # copied from input_ids, or anything else
        labels = torch.tensor(FIX_WANT)
        labels[:, 0] = first
        assert run_check("09-fix-the-batch", labels)[0]


def test_09_fix_the_batch_names_a_wrong_dtype():
    passed, message = run_check("09-fix-the-batch", torch.tensor(FIX_WANT).int())
    assert not passed and "int64" in message


def labels_of(input_ids, *, keep_empty=False, keep_end=True, keep_header=False, shift=False):
    """A learner's reasoning_labels with one of the classic mistakes switched on."""
    labels = torch.full_like(input_ids, -100)
    for b, row in enumerate(input_ids.tolist()):
        inside = False
        for t, token in enumerate(row):
            if inside:
                empty = (token == 3 and row[t + 1 : t + 2] == [4]) or (token == 4 and row[t - 1] == 3)
                if (keep_empty or not empty) and (keep_end or token != 2) and token != 0:
                    labels[b, t - 1 if shift else t] = token
                inside = token != 2
            elif token == 7 and row[t - 1] == 1:
                inside = True
                if keep_header:
                    labels[b, t - 1 : t + 1] = torch.tensor(row[t - 1 : t + 1])
    return labels


def test_09_reasoning_labels_passes_the_reference_walk():
    assert run_check("09-reasoning-labels", labels_of)[0]


def test_09_reasoning_labels_names_a_trained_empty_block():
    passed, message = run_check("09-reasoning-labels", lambda ids: labels_of(ids, keep_empty=True))
    assert not passed and "empty <think></think> block" in message


def test_09_reasoning_labels_names_a_missing_end_token():
    passed, message = run_check("09-reasoning-labels", lambda ids: labels_of(ids, keep_end=False))
    assert not passed and "end token 2" in message and "never stop" in message


def test_09_reasoning_labels_names_a_trained_header():
    passed, message = run_check("09-reasoning-labels", lambda ids: labels_of(ids, keep_header=True))
    assert not passed and "header 1 7 is trained" in message


def test_09_reasoning_labels_names_a_shift():
    passed, message = run_check("09-reasoning-labels", lambda ids: labels_of(ids, shift=True))
    assert not passed and "shifted by one" in message


def test_09_reasoning_labels_names_all_reasoning_dropped():
    def no_think(ids):
        labels = labels_of(ids)
        labels[(ids == 3) | (ids == 4) | (ids == 11) | (ids == 12)] = -100
        return labels

    passed, message = run_check("09-reasoning-labels", no_think)
    assert not passed and "own reasoning block" in message


def test_09_reasoning_labels_names_a_cut_turn_left_untrained():
    def until_end_only(ids):
        labels = labels_of(ids)
        for b, row in enumerate(ids.tolist()):
            if 2 not in row[5:]:  # no end token after the header: the learner drops the turn
                labels[b] = -100
        return labels

    passed, message = run_check("09-reasoning-labels", until_end_only)
    assert not passed and "cut before its end token 2" in message


def test_09_reasoning_labels_names_changed_input_ids():
    def in_place(ids):
        ids[ids == 3] = -100
        return labels_of(ids)

    passed, message = run_check("09-reasoning-labels", in_place)
    assert not passed and "input_ids were changed" in message


def test_09_reasoning_labels_passes_the_notebooks_solution_and_a_vectorized_answer():
    def vectorized(ids):
        start = torch.zeros_like(ids, dtype=torch.bool)
        start[:, 1:] = (ids[:, :-1] == 7) & torch.cat([torch.zeros_like(ids[:, :1]), ids[:, :-2]], 1).eq(1)
        end = torch.zeros_like(start)
        end[:, 1:] = ids[:, :-1] == 2  # a turn closes after its 2
        t = torch.arange(ids.shape[1]).expand_as(ids)
        last = [torch.where(mark, t, -1).cummax(1).values for mark in (start, end)]
        inside = last[0] > last[1]  # a header opened it more recently than a 2 closed a turn
        after_3 = torch.cat([torch.zeros_like(ids[:, :1]), ids[:, :-1]], 1)
        before_4 = torch.cat([ids[:, 1:], torch.zeros_like(ids[:, :1])], 1)
        empty = ((ids == 3) & (before_4 == 4)) | ((ids == 4) & (after_3 == 3))
        return ids.masked_fill(~inside | empty | (ids == 0), -100)

    assert run_check("09-reasoning-labels", vectorized) == (True, "09-reasoning-labels: correct.")
    notebook = json.loads((pathlib.Path(__file__).parents[1] / "notebooks" / "09_debugging_masks.ipynb").read_text())
    solution = next("".join(c["source"]) for c in notebook["cells"] if "def reasoning_labels" in "".join(c["source"])
                    and "<details>" in "".join(c["source"]))  # fmt: skip
    code = solution.split("```python")[1].split("```")[0].replace('check("09-reasoning-labels", reasoning_labels)', "")
    scope = {}
    exec(code, scope)
    assert run_check("09-reasoning-labels", scope["reasoning_labels"])[0]


def first_turn_only(ids):
    """The first `1 7` of each row, up to its first 2 after it: a likely answer that trains one turn per row."""
    labels = torch.full_like(ids, -100)
    for b, row in enumerate(ids.tolist()):
        h = next(t for t in range(1, len(row)) if row[t - 1 : t + 1] == [1, 7])
        stop = row.index(2, h) + 1 if 2 in row[h:] else len(row)
        labels[b, h + 1 : stop] = ids[b, h + 1 : stop]
        if row[h + 1 : h + 3] == [3, 4]:
            labels[b, h + 1 : h + 3] = -100
    return labels


def test_09_reasoning_labels_names_a_second_assistant_turn_left_untrained():
    passed, message = run_check("09-reasoning-labels", first_turn_only)
    assert not passed and "row 4: the second assistant turn (after the second `1 7`, t=17) is not trained" in message


def test_09_reasoning_labels_names_a_header_found_by_7_alone():
    def only_7(ids):
        labels = labels_of(ids)
        for b, row in enumerate(ids.tolist()):
            inside = False
            for t, token in enumerate(row):
                if inside and token not in (0,) and not (token == 3 and row[t + 1 : t + 2] == [4]):
                    labels[b, t] = token if not (token == 4 and row[t - 1] == 3) else -100
                inside = (inside and token != 2) or token == 7
        return labels

    passed, message = run_check("09-reasoning-labels", only_7)
    assert not passed and "row 4, t=14: a 7 in a user's text opened a turn" in message


def test_09_reasoning_labels_names_padding_trained_to_the_rows_end():
    def to_the_end(ids):
        labels = labels_of(ids)
        for b, row in enumerate(ids.tolist()):
            first = next(t for t in range(1, len(row)) if row[t - 1 : t + 1] == [1, 7])
            keep = labels[b, first + 1 :] != -100
            labels[b, first + 1 :] = torch.where(keep | (ids[b, first + 1 :] != 3), ids[b, first + 1 :], -100)
            labels[b, first + 1 : first + 3] = labels_of(ids)[b, first + 1 : first + 3]
        return labels

    passed, message = run_check("09-reasoning-labels", to_the_end)
    assert not passed and "row 0, t=11: padding (id 0) is trained" in message


def test_09_reasoning_labels_names_the_4_of_an_empty_block_trained_alone():
    def skip_3_only(ids):
        labels = labels_of(ids)
        labels[(ids == 4) & (torch.roll(ids, 1, 1) == 3)] = 4
        return labels

    passed, message = run_check("09-reasoning-labels", skip_3_only)
    assert not passed and "row 0, t=7: the 4 of an empty block is trained though its 3 is not" in message


def test_09_reasoning_labels_names_a_user_turn_trained_after_the_answer():
    def past_the_end(ids):
        labels = labels_of(ids)
        for b, row in enumerate(ids.tolist()):
            last = max(t for t, y in enumerate(labels[b].tolist()) if y != -100)
            real = [t for t in range(last + 1, len(row)) if row[t] != 0]
            labels[b, real] = ids[b, real]
        return labels

    passed, message = run_check("09-reasoning-labels", past_the_end)
    assert not passed and "row 2, t=10: trained after the answer's 2: a user turn is not the model's text" in message


def test_09_reasoning_labels_names_minus_one_as_the_ignore_value():
    minus_one = lambda ids: labels_of(ids).masked_fill(labels_of(ids) == -100, -1)  # noqa: E731
    only_the_block = lambda ids: torch.where((ids == 3) | (ids == 4), -1, labels_of(ids))  # noqa: E731
    for answer in (minus_one, only_the_block):
        passed, message = run_check("09-reasoning-labels", answer)
        assert not passed and "labels hold [-1]: cross_entropy ignores only -100" in message, message


def test_09_reasoning_labels_names_padding_trained_after_a_cut_turn():
    def pads_after_cut(ids):
        labels = labels_of(ids)
        labels[5, 10:] = ids[5, 10:]  # the walk stays inside a turn with no 2 and trains the padding
        return labels

    passed, message = run_check("09-reasoning-labels", pads_after_cut)
    assert not passed and "row 5, t=10: padding after a turn cut by truncation is trained" in message
