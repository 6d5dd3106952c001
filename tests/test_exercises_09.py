"""Notebook 09's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why).
"""

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
                if (keep_empty or not empty) and (keep_end or token != 2):
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
