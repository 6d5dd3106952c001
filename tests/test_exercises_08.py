"""Notebook 08's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write: it must fail, and name the mistake.
"""

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
    assert not passed and "expected 0.8571" in message and "mean of the rows' accuracies" not in message


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
        return 6 / 7  # the first batch's answer, whatever the batch

    passed, message = run_check("08-labelled-accuracy", first_batch_only)
    assert not passed and "6 right of 8 labelled" in message


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
