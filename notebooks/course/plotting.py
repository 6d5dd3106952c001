"""The course's figures: one style, one meaning per colour, and three grids (numbers, masks, tokens).

Notebooks import these names from the package (``from course import plot_tokens``); ``setup()`` applies
the style. Each function checks its arguments and says what was wrong and what it expected.
"""

import math

import torch

__all__ = ["COLORS", "PALETTE", "plot_heatmap", "plot_mask", "plot_tokens", "use_style"]

# One figure style for every notebook: sharp on GitHub and on high-density screens, text >= 9 pt.
STYLE = {
    "figure.dpi": 130,
    "figure.figsize": (6.4, 3.0),
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.constrained_layout.use": True,
}
# What each colour means, the same in every figure (colour-blind-safe Okabe-Ito hues).
COLORS = {
    "kept": "#0072B2",  # a target in the loss
    "ignored": "#D9D9D9",  # a target left out of the loss (padding, prompt, sentinel)
    "wrong": "#D55E00",  # a kept target predicted wrongly
    "eos": "#009E73",  # an end-of-sequence target
    "prompt": "#E69F00",  # a prompt token
    "plain": "#F7F7F7",  # a cell that only carries a value
}
# Line and bar colours of data series (runs, averages, timings), in order. None of them is a token-role colour
# above, so a blue line never reads as "kept" or a green bar as "EOS": black, reddish purple (Okabe-Ito),
# indigo, olive and wine (Paul Tol), told apart by readers with the common colour-vision deficiencies.
PALETTE = ["#000000", "#CC79A7", "#332288", "#999933", "#882255"]
# How a heatmap marks a cell that holds no finite number (nan, inf, -inf): a hatch, not a colour.
NONFINITE_HATCH = "xxx"


def use_style():
    """Set the course's figure style and series colours (``setup()`` calls it).

    >>> use_style()  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.rcParams.update(STYLE)
    matplotlib.rcParams["axes.prop_cycle"] = matplotlib.cycler(color=PALETTE)


def _new_axes(ax, columns, rows):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(min(0.55 * columns + 2.0, 9.0), 0.42 * rows + 1.0))
    return ax


def _as_2d(values, what):
    if not isinstance(values, torch.Tensor) or values.dim() != 2:
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"{what} must be a 2-D tensor (rows x columns), got {got}")
    return values.detach()


def _cell_mask(cells, shape, what):
    """``cells`` (None, a bool tensor with one entry per row, or one per cell) as a (rows, columns) bool tensor."""
    if cells is None:
        return torch.zeros(shape, dtype=torch.bool)
    if not isinstance(cells, torch.Tensor) or cells.dtype != torch.bool:
        got = f"a {cells.dtype} tensor" if isinstance(cells, torch.Tensor) else type(cells).__name__
        raise TypeError(f"{what} must be a bool tensor (True where a row or cell is ignored), got {got}")
    if cells.shape == shape[:1]:
        return cells[:, None].expand(shape)
    if cells.shape == shape:
        return cells
    raise ValueError(
        f"{what} must have shape ({shape[0]},) (one per row) or {tuple(shape)} (one per cell), got {tuple(cells.shape)}"
    )


def plot_heatmap(
    values,
    title="",
    xlabel="class",
    ylabel="position",
    ax=None,
    annotate=True,
    cmap="viridis",
    row_labels=None,
    fmt="{:.3g}",
    ignored=None,
    discrete=False,
    colorbar=True,
):
    """Draw a 2-D tensor of numbers as a heatmap; returns the Axes.

    The colour scale spans the finite values only. A cell holding ``nan``, ``inf`` or ``-inf`` is hatched,
    its value written in it, and named in a legend. ``ignored`` (a bool tensor, one entry per row or per cell)
    draws those cells in the lesson's grey for "ignored" (``COLORS["ignored"]``), outside the colour scale.
    ``discrete=True`` gives each distinct value its own colour, named in a legend instead of a colour bar
    (for data that holds only a few values, such as one-hot logits). For a diverging quantity (a gradient),
    pass ``cmap="RdBu_r"``: the scale is then centred on 0. ``row_labels`` names the rows (default: their
    numbers); ``fmt`` formats the numbers written in the cells and the legend. ``colorbar=False`` leaves the
    colour bar out (for panels that share one).

    >>> ax = plot_heatmap(torch.tensor([[0.5, float("nan")]]), title="one nan")  # doctest: +SKIP
    """
    import matplotlib
    import matplotlib.colors
    import matplotlib.patches
    import numpy as np

    data = _as_2d(values, "values").float()
    hidden = _cell_mask(ignored, data.shape, "ignored")
    finite = torch.isfinite(data)
    shown = finite & ~hidden  # the cells the colour scale is drawn from
    marked = bool(hidden.any() or not finite.all())  # a legend above the grid: room for it in a new figure
    ax = _new_axes(ax, data.shape[1] + (3 if marked and not discrete else 0), data.shape[0])
    colormap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    legend = []
    if discrete:
        levels = data[shown].unique().tolist()
        if len(levels) > 8:
            raise ValueError(f"discrete=True draws one colour per value, at most 8; got {len(levels)} distinct values")
        colours = colormap(np.linspace(0.0, 1.0, len(levels))) if len(levels) > 1 else colormap([0.5])
        colormap = matplotlib.colors.ListedColormap(colours)
        codes = torch.bucketize(data.nan_to_num(), torch.tensor(levels or [0.0]))
        pixels, bounds = codes.float(), {"vmin": -0.5, "vmax": len(colours) - 0.5}
        legend += [
            matplotlib.patches.Patch(color=c, label=fmt.format(v)) for c, v in zip(colours, levels, strict=False)
        ]
    else:
        scale = data[shown]
        low, high = (scale.min().item(), scale.max().item()) if scale.numel() else (0.0, 1.0)
        if cmap in ("RdBu_r", "RdBu", "coolwarm"):
            limit = max(abs(low), abs(high)) or 1.0
            low, high = -limit, limit
        pixels, bounds = data, {"vmin": low, "vmax": high}
    masked = np.ma.masked_array(pixels.numpy(), mask=(~shown).numpy())
    image = ax.imshow(masked, cmap=colormap.with_extremes(bad="white"), aspect="auto", **bounds)
    if colorbar and not discrete:
        ax.figure.colorbar(image, ax=ax, shrink=0.9)
    for row, col in hidden.nonzero().tolist():
        ax.add_patch(matplotlib.patches.Rectangle((col - 0.5, row - 0.5), 1, 1, color=COLORS["ignored"], lw=0))
    for row, col in (~finite).nonzero().tolist():
        box = matplotlib.patches.Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, lw=0, hatch=NONFINITE_HATCH)
        ax.add_patch(box)
    if hidden.any():
        legend.append(matplotlib.patches.Patch(color=COLORS["ignored"], label="ignored"))
    if not finite.all():
        legend.append(matplotlib.patches.Patch(facecolor="white", hatch=NONFINITE_HATCH, label="not finite (nan, inf)"))
    ax.set(xlabel=xlabel, ylabel=ylabel, xticks=range(data.shape[1]))
    ax.set_yticks(range(data.shape[0]), row_labels if row_labels is not None else range(data.shape[0]))
    if annotate and data.numel() <= 120:
        for (row, col), v in zip(
            torch.cartesian_prod(*map(torch.arange, data.shape)).tolist(), data.flatten().tolist(), strict=True
        ):
            if not math.isfinite(v):  # written on a white box over the hatch
                box = {"facecolor": "white", "edgecolor": "none", "pad": 1}
                ax.text(col, row, str(v), ha="center", va="center", color="black", bbox=box)
                continue
            shade = (1.0, 1.0, 1.0) if hidden[row, col] else image.cmap(image.norm(pixels[row, col].item()))
            dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5
            ax.text(col, row, fmt.format(v), ha="center", va="center", color="white" if dark else "black")
    if discrete:  # one legend beside the grid, as plot_tokens has
        ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        ax.set_title(title)
    elif legend:  # the colour bar takes the right: the legend goes between the title and the grid
        ax.legend(handles=legend, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=len(legend), borderaxespad=0)
        ax.set_title(title, pad=24)
    else:
        ax.set_title(title)
    return ax


def plot_mask(mask, title="", xlabel="position t", ylabel="sequence b", ax=None, labels=("padding", "real")):
    """Draw a boolean mask with two colours (False: grey, True: blue) and a legend; returns the Axes.

    >>> ax = plot_mask(torch.tensor([[True, False]]))  # doctest: +SKIP
    """
    data = _as_2d(values=mask, what="mask")
    if data.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True where a position counts), got a {data.dtype} tensor")
    kinds = [["kept" if v else "ignored" for v in row] for row in data.tolist()]
    texts = [["1" if v else "0" for v in row] for row in data.tolist()]
    ax = plot_tokens(texts, kinds, ax=ax, names={"kept": labels[1], "ignored": labels[0]})
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, yticks=range(data.shape[0]))
    return ax


def plot_tokens(texts, kinds, row_labels=None, title="", ax=None, names=None):
    """Draw rows of tokens as a grid of coloured cells: ``kinds`` names each cell's colour in COLORS.

    ``texts`` and ``kinds`` are lists of rows of equal lengths; ``names`` renames kinds in the legend.

    >>> ax = plot_tokens([["5", "2"]], [["kept", "ignored"]], row_labels=["target"])  # doctest: +SKIP
    """
    import matplotlib.colors
    import matplotlib.patches

    shape = (len(texts), len(texts[0]) if texts else 0)
    if shape[1] == 0 or any(len(row) != shape[1] for row in (*texts, *kinds)) or len(kinds) != shape[0]:
        raise ValueError("texts and kinds must be non-empty lists of rows, all of one length, one kind per text")
    unknown = {kind for row in kinds for kind in row} - set(COLORS)
    if unknown:
        raise ValueError(f"unknown kind(s) {sorted(unknown)}; expected some of {sorted(COLORS)}")
    order = list(COLORS)
    ax = _new_axes(ax, shape[1], shape[0])
    codes = [[order.index(kind) for kind in row] for row in kinds]
    cmap = matplotlib.colors.ListedColormap(list(COLORS.values()))
    ax.imshow(codes, cmap=cmap, vmin=-0.5, vmax=len(order) - 0.5, aspect="auto")
    for row, (text_row, kind_row) in enumerate(zip(texts, kinds, strict=True)):
        for col, (text, kind) in enumerate(zip(text_row, kind_row, strict=True)):
            light = kind in ("ignored", "plain", "prompt")
            ax.text(col, row, str(text), ha="center", va="center", color="black" if light else "white")
    ax.set_xticks(range(shape[1]))
    ax.set_xticks([x - 0.5 for x in range(1, shape[1])], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, shape[0])], minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.set_yticks(range(shape[0]), row_labels if row_labels is not None else range(shape[0]))
    ax.set_title(title)
    for side in ax.spines.values():
        side.set_visible(False)
    used = [kind for kind in order if any(kind in row for row in kinds) and kind != "plain"]
    names = {**{kind: kind for kind in order}, **(names or {})}
    patches = [matplotlib.patches.Patch(color=COLORS[kind], label=names[kind]) for kind in used]
    ax.legend(handles=patches, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return ax
