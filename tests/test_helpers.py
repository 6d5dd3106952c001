"""Specifications of notebooks/course/helpers.py: what each helper returns, and what it says to bad input."""

import doctest
import math

import pytest
import torch
import torch.nn.functional as F

from course import helpers
from course.helpers import lengths_to_mask, reference_cross_entropy, seq_to_logits, setup


def test_docstring_examples_run_as_written():
    failures, tried = doctest.testmod(helpers, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried >= 5
    assert failures == 0


# --- setup ---------------------------------------------------------------------------------


def test_setup_makes_random_draws_repeatable():
    setup(3)
    first = torch.rand(4)
    setup(3)
    assert torch.equal(first, torch.rand(4))


def test_setup_prints_four_decimals():
    setup()
    assert repr(torch.tensor([1 / 3])) == "tensor([0.3333])"


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_setup_rejects_a_seed_that_is_not_a_non_negative_int(seed):
    with pytest.raises(TypeError, match="seed must be a non-negative int"):
        setup(seed)


# --- seq_to_logits -------------------------------------------------------------------------


def test_seq_to_logits_puts_the_score_at_each_predicted_class():
    logits = seq_to_logits([2, 0, 1], num_classes=3, score=7.0)
    assert logits.tolist() == [[0, 0, 7], [7, 0, 0], [0, 7, 0]]
    assert logits.dtype == torch.float32


def test_seq_to_logits_accepts_an_integer_tensor():
    assert torch.equal(seq_to_logits(torch.tensor([1, 0]), 2, 1.0), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


def test_seq_to_logits_with_score_1000_gives_the_gists_zero_loss():
    targets = torch.tensor([9, 1, 3, 7, 8, 2])
    assert F.cross_entropy(seq_to_logits(targets), targets).item() == 0.0


def test_seq_to_logits_explains_that_negative_ids_mark_ignored_targets():
    with pytest.raises(ValueError, match="negative ids mark ignored targets, not predictions"):
        seq_to_logits([3, -1])


def test_seq_to_logits_names_an_out_of_range_id_and_the_valid_range():
    with pytest.raises(ValueError, match=r"class id 10, out of range for num_classes=10 \(expected ids 0..9\)"):
        seq_to_logits([10])


def test_seq_to_logits_accepts_numpy_integers():
    import numpy as np

    assert seq_to_logits([np.int64(1), np.int64(0)], num_classes=2, score=1.0).tolist() == [[0, 1], [1, 0]]


def test_seq_to_logits_names_the_first_value_that_is_not_an_integer():
    with pytest.raises(TypeError, match=r"seq must hold integer class ids, got 1.5 \(float\)"):
        seq_to_logits([1, 1.5])


@pytest.mark.parametrize("seq", [[1.5, 2], torch.tensor([0.0, 1.0]), torch.tensor([True]), ["a"]])
def test_seq_to_logits_rejects_ids_that_are_not_integers(seq):
    with pytest.raises(TypeError, match="must hold integer class ids"):
        seq_to_logits(seq)


def test_seq_to_logits_rejects_something_that_is_not_a_sequence():
    with pytest.raises(TypeError, match="must be a list of ints or an integer tensor, got str"):
        seq_to_logits("123")


def test_seq_to_logits_rejects_a_2d_input_and_gives_its_shape():
    with pytest.raises(ValueError, match=r"seq must be 1-D \(one class id per position\), got shape \(1, 2\)"):
        seq_to_logits(torch.tensor([[1, 2]]))


def test_seq_to_logits_says_a_nested_list_is_not_1d_rather_than_not_integer():
    with pytest.raises(
        ValueError, match=r"seq must be 1-D \(one class id per position\), got a nested list holding \[1, 2\]"
    ):
        seq_to_logits([[1, 2]])


def test_seq_to_logits_checks_the_shape_of_a_float_tensor_before_its_dtype():
    with pytest.raises(ValueError, match=r"must be 1-D .* got shape \(2, 1\)"):
        seq_to_logits(torch.tensor([[1.0], [2.0]]))


@pytest.mark.parametrize("score", [-5, -0.5])
def test_seq_to_logits_rejects_a_negative_score_that_would_make_the_predicted_class_the_least_likely(score):
    with pytest.raises(ValueError, match=rf"score must be >= 0, got {score}: .* predicted class the least likely"):
        seq_to_logits([1, 2], score=score)


def test_seq_to_logits_accepts_a_score_of_0_which_gives_uniform_rows():
    assert F.cross_entropy(seq_to_logits([1], num_classes=4, score=0), torch.tensor([1])).item() == pytest.approx(
        math.log(4)
    )


@pytest.mark.parametrize("num_classes", [0, -3, 2.0, True])
def test_seq_to_logits_rejects_a_class_count_that_is_not_positive(num_classes):
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        seq_to_logits([0], num_classes=num_classes)


@pytest.mark.parametrize("score", [float("inf"), float("nan"), "1000", None])
def test_seq_to_logits_rejects_a_score_that_is_not_a_finite_number(score):
    with pytest.raises(ValueError, match="score must be a finite number"):
        seq_to_logits([0], score=score)


# --- lengths_to_mask -----------------------------------------------------------------------


def test_lengths_to_mask_is_true_before_each_length():
    assert lengths_to_mask([2, 0, 3]).tolist() == [
        [True, True, False],
        [False, False, False],
        [True, True, True],
    ]


def test_lengths_to_mask_pads_to_max_len():
    assert lengths_to_mask(torch.tensor([1]), max_len=3).tolist() == [[True, False, False]]


def test_lengths_to_mask_accepts_numpy_integers():
    import numpy as np

    assert lengths_to_mask([np.int64(2), np.int32(1)]).tolist() == [[True, True], [True, False]]


def test_lengths_to_mask_says_lengths_must_be_whole_numbers_and_names_the_dtype():
    with pytest.raises(
        TypeError, match=r"lengths must hold integer lengths \(whole numbers of positions\), got a torch.float32"
    ):
        lengths_to_mask(torch.tensor([2.0, 3.0]))


def test_lengths_to_mask_says_lengths_are_one_per_sequence_when_given_a_2d_tensor():
    with pytest.raises(ValueError, match=r"lengths must be 1-D \(one length per sequence\), got shape \(1, 2\)"):
        lengths_to_mask(torch.tensor([[3, 1]]))


@pytest.mark.parametrize("lengths", [[[3, 1]], [(3, 1)], [torch.tensor([3, 1])]], ids=["list", "tuple", "tensor"])
def test_lengths_to_mask_says_a_nested_list_must_be_1d_not_that_it_must_hold_integers(lengths):
    with pytest.raises(ValueError, match=r"lengths must be 1-D \(one length per sequence\), got a nested list"):
        lengths_to_mask(lengths)


def test_lengths_to_mask_rejects_a_negative_length():
    with pytest.raises(ValueError, match=r"lengths must be >= 0 .* got \[2, -1\]"):
        lengths_to_mask([2, -1])


def test_lengths_to_mask_rejects_a_max_len_shorter_than_the_longest_sequence():
    with pytest.raises(ValueError, match=r"max_len must be an int >= the longest length \(4\), got 3"):
        lengths_to_mask([4, 1], max_len=3)


# --- reference_cross_entropy ---------------------------------------------------------------


def test_reference_cross_entropy_equals_torch_on_the_gists_masked_example():
    logits = seq_to_logits([3, 4, 3, 8, 2, 8])
    targets = torch.tensor([-1, -1, -1, 8, 2, 1])
    ours = reference_cross_entropy(logits, targets, ignore_index=-1)
    assert ours.item() == pytest.approx(1000 / 3, rel=1e-6)
    assert ours.item() == pytest.approx(F.cross_entropy(logits, targets, ignore_index=-1).item(), rel=1e-6)


def test_reference_cross_entropy_none_keeps_the_target_shape_with_zeros_where_ignored():
    logits = torch.randn(2, 5, 3)
    targets = torch.tensor([[0, -100, 4], [-100, -100, 1]])
    losses = reference_cross_entropy(logits, targets, reduction="none")
    assert losses.shape == (2, 3)
    assert (losses[targets == -100] == 0).all()


def test_reference_cross_entropy_rejects_int32_targets():
    with pytest.raises(TypeError, match=r"target must be an int64 \(torch.long\) tensor"):
        reference_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1], dtype=torch.int32))


def test_reference_cross_entropy_rejects_integer_logits_and_names_their_dtype():
    with pytest.raises(TypeError, match="input must be a floating-point tensor of logits, got a torch.int64 tensor"):
        reference_cross_entropy(torch.tensor([[1, 2]]), torch.tensor([0]))


def test_reference_cross_entropy_says_a_list_of_weights_must_be_a_tensor():
    with pytest.raises(TypeError, match=r"weight must be a floating-point tensor of shape \(3,\).* got list"):
        reference_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), weight=[1.0, 2.0, 3.0])


def test_reference_cross_entropy_says_label_smoothing_must_be_a_number():
    with pytest.raises(TypeError, match=r"label_smoothing must be a number in \[0, 1\], got '0.1' \(str\)"):
        reference_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), label_smoothing="0.1")


def test_reference_cross_entropy_explains_the_class_dimension_when_shapes_do_not_fit():
    with pytest.raises(ValueError, match=r"needs the class dimension at dim 1"):
        reference_cross_entropy(torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.long))


def test_reference_cross_entropy_rejects_an_unknown_reduction():
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        reference_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), reduction="avg")


def test_reference_cross_entropy_rejects_label_smoothing_outside_0_to_1():
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        reference_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), label_smoothing=1.5)


def test_reference_cross_entropy_wants_one_weight_per_class():
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\), one per class, got \(2,\)"):
        reference_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), weight=torch.ones(2))


def test_reference_cross_entropy_rejects_a_target_that_is_neither_a_class_nor_ignored():
    with pytest.raises(ValueError, match=r"target\[1\] is -1: targets must be ignore_index \(-100\) or class ids 0..2"):
        reference_cross_entropy(torch.randn(2, 3), torch.tensor([0, -1]))


def test_reference_cross_entropy_names_the_first_bad_target_its_position_and_how_many_more():
    with pytest.raises(ValueError, match=r"target\[1\] is 7:"):
        reference_cross_entropy(torch.randn(3, 4), torch.tensor([1, 7, -100]))
    with pytest.raises(ValueError, match=r"target\[0, 1\] is 7 \(and 1 more\): .* class ids 0..3"):
        reference_cross_entropy(torch.randn(2, 4, 3), torch.tensor([[1, 7, -100], [9, 0, 0]]))


def test_reference_cross_entropy_does_not_flag_the_ignore_index_itself_even_when_out_of_range():
    loss = reference_cross_entropy(torch.randn(2, 3), torch.tensor([5, 1]), ignore_index=5)
    assert torch.isfinite(loss)
