"""Notebook 06's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import torch

from course.exercises import run_check


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

    passed, message = run_check("06-assistant-labels", shifted)
    assert not passed and "shifted by one" in message


def test_06_assistant_labels_names_labelling_only_the_first_assistant_turn():
    def first_turn_only(input_ids, assistant_id, end_id):
        labels = torch.full_like(input_ids, -100)
        for b, row in enumerate(input_ids.tolist()):
            if assistant_id in row:
                start = row.index(assistant_id) + 1  # list.index finds the first header only
                end = row.index(end_id, start) + 1 if end_id in row[start:] else len(row)
                labels[b, start:end] = input_ids[b, start:end]
        return labels

    passed, message = run_check("06-assistant-labels", first_turn_only)
    assert not passed and "only the first assistant turn" in message
