"""Specifications of notebooks/course/plotting.py: what each figure draws, and what it says to bad input."""

import doctest

import matplotlib
import pytest
import torch

from course import plotting
from course.helpers import seq_to_logits
from course.plotting import plot_heatmap, plot_mask, plot_tokens

matplotlib.use("Agg")


def test_docstring_examples_run_as_written():
    failures, _ = doctest.testmod(plotting, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


# --- plot_heatmap --------------------------------------------------------------------------


def test_plot_heatmap_labels_the_axes_and_writes_each_value():
    import matplotlib.pyplot as plt

    ax = plot_heatmap(torch.tensor([[0.0, 1.0], [2.0, 3.0]]), title="t")
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("t", "class", "position")
    assert sorted(text.get_text() for text in ax.texts) == ["0", "1", "2", "3"]
    plt.close(ax.figure)


def test_plot_heatmap_rejects_a_tensor_that_is_not_2d():
    with pytest.raises(ValueError, match=r"values must be a 2-D tensor \(rows x columns\), got \(3,\)"):
        plot_heatmap(torch.zeros(3))


def test_plot_heatmap_centres_a_diverging_scale_on_zero():
    import matplotlib.pyplot as plt

    ax = plot_heatmap(torch.tensor([[-1.0, 3.0]]), cmap="RdBu_r")
    assert ax.images[0].get_clim() == (-3.0, 3.0)
    plt.close(ax.figure)


def test_plot_heatmap_scales_colours_from_the_finite_values_only():
    import matplotlib.pyplot as plt

    inf, nan = float("inf"), float("nan")
    ax = plot_heatmap(torch.tensor([[-inf, 1.0], [2.0, nan]]))
    assert ax.images[0].get_clim() == (1.0, 2.0)
    plt.close(ax.figure)
    ax = plot_heatmap(torch.tensor([[-inf, 0.5], [-1.0, nan]]), cmap="RdBu_r")
    assert ax.images[0].get_clim() == (-1.0, 1.0)  # not collapsed by the -inf, not blown up to infinity
    plt.close(ax.figure)


def test_plot_heatmap_hatches_each_non_finite_cell_writes_its_value_and_names_it_in_a_legend():
    import matplotlib.pyplot as plt

    ax = plot_heatmap(torch.tensor([[float("-inf"), 1.0], [2.0, float("nan")]]), fmt="{:.1f}")
    hatched = [patch for patch in ax.patches if patch.get_hatch()]
    assert sorted((p.get_x(), p.get_y()) for p in hatched) == [(-0.5, -0.5), (0.5, 0.5)]
    assert sorted(t.get_text() for t in ax.texts) == ["-inf", "1.0", "2.0", "nan"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["not finite (nan, inf)"]
    plt.close(ax.figure)


def test_plot_heatmap_draws_ignored_rows_in_the_lessons_grey_outside_the_scale():
    import matplotlib.colors
    import matplotlib.pyplot as plt

    ax = plot_heatmap(torch.tensor([[1.0, 2.0], [0.0, 50.0]]), ignored=torch.tensor([False, True]))
    grey = [p for p in ax.patches if matplotlib.colors.same_color(p.get_facecolor(), plotting.COLORS["ignored"])]
    assert sorted((p.get_x(), p.get_y()) for p in grey) == [(-0.5, 0.5), (0.5, 0.5)]
    assert ax.images[0].get_clim() == (1.0, 2.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ignored"]
    plt.close(ax.figure)


def test_plot_heatmap_says_what_ignored_must_be():
    with pytest.raises(TypeError, match="ignored must be a bool tensor .* got a torch.int64 tensor"):
        plot_heatmap(torch.zeros(2, 3), ignored=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"ignored must have shape \(2,\) \(one per row\) or \(2, 3\)"):
        plot_heatmap(torch.zeros(2, 3), ignored=torch.tensor([True, False, True]))


def test_plot_heatmap_discrete_names_each_value_in_a_legend_instead_of_a_colour_bar():
    import matplotlib.pyplot as plt

    ax = plot_heatmap(seq_to_logits([1, 0], num_classes=3), discrete=True, fmt="{:g}")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1000"]
    assert len(ax.figure.axes) == 1  # no colour bar
    plt.close(ax.figure)


def test_plot_heatmap_leaves_the_colour_bar_out_for_panels_that_share_one():
    import matplotlib.pyplot as plt

    with_bar, without = plot_heatmap(torch.eye(2)), plot_heatmap(torch.eye(2), colorbar=False)
    assert (len(with_bar.figure.axes), len(without.figure.axes)) == (2, 1)
    plt.close("all")


def test_plot_heatmap_discrete_refuses_more_values_than_it_can_tell_apart():
    with pytest.raises(ValueError, match="at most 8; got 12 distinct values"):
        plot_heatmap(torch.arange(12.0).reshape(3, 4), discrete=True)


def test_line_and_bar_colours_never_reuse_a_token_role_colour():
    roles = {colour.upper() for colour in plotting.COLORS.values()}
    assert not roles & {colour.upper() for colour in plotting.PALETTE}
    assert len(set(plotting.PALETTE)) == len(plotting.PALETTE) >= 3


# --- plot_mask and plot_tokens -------------------------------------------------------------


def test_plot_mask_draws_two_colours_and_names_them_in_a_legend():
    import matplotlib.pyplot as plt

    ax = plot_mask(torch.tensor([[True, False], [True, True]]), title="m")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["real", "padding"]
    assert sorted(t.get_text() for t in ax.texts) == ["0", "1", "1", "1"]
    plt.close(ax.figure)


def test_plot_mask_wants_a_bool_mask():
    with pytest.raises(TypeError, match="mask must be a bool tensor .* got a torch.int64 tensor"):
        plot_mask(torch.tensor([[1, 0]]))


def test_plot_tokens_labels_rows_and_lists_only_the_kinds_it_used():
    import matplotlib.pyplot as plt

    ax = plot_tokens([["5", "-1"]], [["kept", "ignored"]], row_labels=["target"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["target"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["kept", "ignored"]
    plt.close(ax.figure)


def test_plot_tokens_names_an_unknown_kind():
    with pytest.raises(ValueError, match=r"unknown kind\(s\) \['masked'\]"):
        plot_tokens([["1"]], [["masked"]])


def test_plot_tokens_wants_rows_of_one_length():
    with pytest.raises(ValueError, match="all of one length"):
        plot_tokens([["1", "2"], ["3"]], [["kept", "kept"], ["kept"]])
