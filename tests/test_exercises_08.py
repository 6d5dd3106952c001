"""Notebook 08's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write: it must fail, and name the mistake.
"""

import numpy as np
import torch

from course.exercises import run_check


def _align(word_ids, word_labels, later):
    labels, previous = [], None
    for w in word_ids:
        labels.append(-100 if w is None else word_labels[w] if w != previous else later(word_labels[w]))
        previous = w
    return labels


def test_08_align_all_tokens_names_a_b_tag_kept_on_later_pieces():
    passed, message = run_check("08-align-all-tokens", lambda ids, labels, b_to_i: _align(ids, labels, lambda y: y))
    assert not passed and "kept its word's B- tag" in message


def test_08_align_all_tokens_names_the_first_piece_alignment():
    passed, message = run_check("08-align-all-tokens", lambda ids, labels, b_to_i: _align(ids, labels, lambda y: -100))
    assert not passed and "first-piece alignment" in message


def test_08_align_all_tokens_names_a_label_on_a_special_token():
    def labels_specials_as_o(word_ids, word_labels, b_to_i):
        aligned = _align(word_ids, word_labels, lambda y: b_to_i.get(y, y))
        return [0 if w is None else y for w, y in zip(word_ids, aligned, strict=True)]

    passed, message = run_check("08-align-all-tokens", labels_specials_as_o)
    assert not passed and "where word_ids gives None, the label is -100" in message


def test_08_labelled_accuracy_names_counting_every_position():
    passed, message = run_check("08-labelled-accuracy", lambda p, y: (p == y).float().mean().item())
    assert not passed and "the -100 positions count as wrong" in message


def test_08_labelled_accuracy_names_reading_minus_100_as_o():
    passed, message = run_check("08-labelled-accuracy", lambda p, y: (p == y.clamp(min=0)).float().mean().item())
    assert not passed and "reads -100 as the class 'O'" in message


def test_08_labelled_accuracy_names_a_mean_of_row_accuracies():
    def mean_of_rows(predictions, labels):
        rows = [(p[y != -100] == y[y != -100]).float().mean() for p, y in zip(predictions, labels, strict=True)]
        return torch.stack(rows).mean().item()

    passed, message = run_check("08-labelled-accuracy", mean_of_rows)
    assert not passed and "mean of the rows' accuracies" in message


def test_08_labelled_accuracy_rejects_a_precision_of_the_non_o_predictions_without_calling_it_a_row_mean():
    def precision(predictions, labels):
        scored = (labels != -100) & (predictions != 0)
        return (predictions[scored] == labels[scored]).float().mean().item()

    passed, message = run_check("08-labelled-accuracy", precision)
    assert not passed and "expected 0.7500" in message
    assert "mean of the rows' accuracies" not in message and "O labels (0) were dropped" not in message


def test_08_labelled_accuracy_accepts_a_one_element_tensor():
    def as_tensor(predictions, labels):
        kept = labels != -100
        return (predictions[kept] == labels[kept]).float().mean()

    assert run_check("08-labelled-accuracy", as_tensor)[0]


def test_08_labelled_accuracy_says_when_the_labels_were_overwritten():
    def overwrites(predictions, labels):
        kept = labels != -100
        labels[~kept] = 0
        return (predictions[kept] == labels[kept]).float().mean().item()

    passed, message = run_check("08-labelled-accuracy", overwrites)
    assert not passed and "were changed" in message


def test_08_decoder_inputs_names_minus_100_left_in_the_inputs():
    def keeps_minus_100(labels, pad_id, start_id):
        return torch.cat([torch.full_like(labels[:, :1], start_id), labels[:, :-1]], dim=1)

    passed, message = run_check("08-decoder-inputs", keeps_minus_100)
    assert not passed and "-100 left in the decoder inputs" in message


def test_08_decoder_inputs_names_a_shift_the_wrong_way():
    def shifts_left(labels, pad_id, start_id):
        shifted = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], pad_id)], dim=1)
        return shifted.masked_fill(shifted == -100, pad_id)

    passed, message = run_check("08-decoder-inputs", shifts_left)
    assert not passed and "shifted the wrong way" in message


def test_08_decoder_inputs_says_when_the_labels_were_changed_in_place():
    def in_place(labels, pad_id, start_id):
        labels.masked_fill_(labels == -100, pad_id)
        return torch.cat([torch.full_like(labels[:, :1], start_id), labels[:, :-1]], dim=1)

    passed, message = run_check("08-decoder-inputs", in_place)
    assert not passed and "labels were changed" in message


def test_08_labelled_accuracy_checks_a_second_batch():
    def first_batch_only(predictions, labels):
        return 0.75  # the first batch's answer, whatever the batch

    passed, message = run_check("08-labelled-accuracy", first_batch_only)
    assert not passed and "6 right of 7 labelled" in message


def test_08_labelled_accuracy_names_dropping_the_o_labels():
    def non_o_only(predictions, labels):
        kept = labels > 0  # drops the O labels along with -100
        return (predictions[kept] == labels[kept]).float().mean().item()

    passed, message = run_check("08-labelled-accuracy", non_o_only)
    assert not passed and "O labels (0) were dropped too" in message


def test_08_decoder_inputs_names_pad_and_start_ids_swapped():
    def swapped(labels, pad_id, start_id):
        shifted = torch.cat([torch.full_like(labels[:, :1], pad_id), labels[:, :-1]], dim=1)
        return shifted.masked_fill(shifted == -100, start_id)

    passed, message = run_check("08-decoder-inputs", swapped)
    assert not passed and "pad_id and start_id swapped" in message


def test_08_decoder_inputs_names_a_float_tensor():
    def as_float(labels, pad_id, start_id):
        shifted = torch.cat([torch.full_like(labels[:, :1], start_id), labels[:, :-1]], dim=1).float()
        return shifted.masked_fill(shifted == -100, pad_id)

    passed, message = run_check("08-decoder-inputs", as_float)
    assert not passed and "return int64" in message


def _right(word_ids, word_labels, b_to_i):
    return _align(word_ids, word_labels, lambda y: b_to_i.get(y, y))


def test_08_align_all_tokens_rejects_a_hard_coded_tag_map():
    passed, message = run_check("08-align-all-tokens", lambda ids, labels, b_to_i: _right(ids, labels, {1: 2, 3: 4}))
    assert not passed and "use the b_to_i you are given" in message


def test_08_align_all_tokens_rejects_the_odd_b_plus_one_rule():
    def odd_plus_one(word_ids, word_labels, b_to_i):  # the Hugging Face course's rule for its own tag set
        return _align(word_ids, word_labels, lambda y: y + 1 if y % 2 == 1 else y)

    passed, message = run_check("08-align-all-tokens", odd_plus_one)
    assert not passed and "use the b_to_i you are given" in message


def test_08_align_all_tokens_names_b_plus_one_for_the_i_tag():
    def b_plus_one(word_ids, word_labels, b_to_i):
        return _align(word_ids, word_labels, lambda y: y + 1 if y in b_to_i else y)

    passed, message = run_check("08-align-all-tokens", b_plus_one)
    assert not passed and "use the b_to_i you are given" in message


def test_08_align_all_tokens_names_b_to_i_on_the_first_piece():
    def every_piece(word_ids, word_labels, b_to_i):
        return [-100 if w is None else b_to_i.get(word_labels[w], word_labels[w]) for w in word_ids]

    passed, message = run_check("08-align-all-tokens", every_piece)
    assert not passed and "the first piece got b_to_i's I- tag too" in message


def test_08_align_all_tokens_accepts_the_map_it_is_given_written_another_way():
    def with_index(word_ids, word_labels, b_to_i):
        return [
            -100
            if w is None
            else word_labels[w]
            if t == 0 or word_ids[t - 1] != w
            else b_to_i.get(word_labels[w], word_labels[w])
            for t, w in enumerate(word_ids)
        ]

    assert run_check("08-align-all-tokens", with_index)[0]


def _shift_with(labels, pad_id, start_id):
    shifted = torch.cat([torch.full_like(labels[:, :1], start_id), labels[:, :-1]], dim=1)
    return shifted.masked_fill(shifted == -100, pad_id)


def test_08_decoder_inputs_names_a_hard_coded_pad_id():
    passed, message = run_check("08-decoder-inputs", lambda labels, pad_id, start_id: _shift_with(labels, 0, start_id))
    assert not passed and "-100 became 0, not pad_id" in message


def test_08_decoder_inputs_names_a_hard_coded_start_id():
    passed, message = run_check("08-decoder-inputs", lambda labels, pad_id, start_id: _shift_with(labels, pad_id, 0))
    assert not passed and "the first column is 0, not start_id" in message


def test_08_decoder_inputs_names_both_ids_hard_coded():
    passed, message = run_check("08-decoder-inputs", lambda labels, pad_id, start_id: _shift_with(labels, 0, 0))
    assert not passed and "pad_id and start_id ignored" in message


def test_08_align_all_tokens_accepts_a_numpy_array_of_the_right_labels():
    def as_array(word_ids, word_labels, b_to_i):
        labels, previous = [], None
        for w in word_ids:
            labels.append(
                -100 if w is None else word_labels[w] if w != previous else b_to_i.get(word_labels[w], word_labels[w])
            )
            previous = w
        return np.array(labels)

    assert run_check("08-align-all-tokens", as_array)[0]
