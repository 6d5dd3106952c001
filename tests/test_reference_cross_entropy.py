"""Property: helpers.reference_cross_entropy, written from the documented formula, equals F.cross_entropy."""

import math

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from course.helpers import reference_cross_entropy


@st.composite
def cases(draw):
    """Random logits, targets and options: shapes (N, C) and (N, C, d1[, d2]), every reduction,
    ignore values -100, -1 and a real class id, optional weights and label smoothing, and
    batches in which every target is ignored."""
    num_classes = draw(st.integers(1, 6))
    batch = draw(st.integers(1, 4))
    extra = draw(st.lists(st.integers(1, 3), max_size=2))
    ignore_index = draw(st.sampled_from([-100, -1, 0, num_classes - 1]))
    seed = draw(st.integers(0, 2**16))
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, num_classes, *extra, generator=generator) * draw(st.sampled_from([1.0, 10.0]))
    targets = torch.randint(0, num_classes, (batch, *extra), generator=generator)
    ignored = torch.rand(targets.shape, generator=generator) < draw(st.sampled_from([0.0, 0.3, 1.0]))
    targets[ignored] = ignore_index
    weight = None
    if draw(st.booleans()):
        weight = torch.rand(num_classes, generator=generator) + 0.1
    options = {
        "weight": weight,
        "ignore_index": ignore_index,
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.5])),
    }
    return logits, targets, options


def same(ours, theirs):
    if ours.shape != theirs.shape:
        return False
    both_nan = ours.isnan() & theirs.isnan()
    return bool((((ours - theirs).abs() <= 1e-5 * (1 + theirs.abs())) | both_nan).all())


@given(cases())
def test_reference_matches_torch_cross_entropy(case):
    logits, targets, options = case
    assert same(reference_cross_entropy(logits, targets, **options), F.cross_entropy(logits, targets, **options))


@given(st.integers(1, 5), st.integers(1, 5))
def test_every_target_ignored_gives_nan_under_mean_and_zero_under_sum(batch, num_classes):
    logits = torch.randn(batch, num_classes)
    targets = torch.full((batch,), -100)
    assert math.isnan(reference_cross_entropy(logits, targets, reduction="mean").item())
    assert math.isnan(F.cross_entropy(logits, targets, reduction="mean").item())
    assert reference_cross_entropy(logits, targets, reduction="sum").item() == 0.0
    assert F.cross_entropy(logits, targets, reduction="sum").item() == 0.0
