"""The course's own modules, kept out of the reader's way beside the notebooks.

A notebook imports what it uses in one line, ``from course import check, plot_tokens, setup``; each name
lives in one module of this package and is loaded only when asked for:

- ``helpers``: ``setup``, ``seq_to_logits``, ``lengths_to_mask``, ``reference_cross_entropy``;
- ``plotting``: the figure style, ``COLORS``, ``PALETTE``, ``plot_heatmap``, ``plot_mask``, ``plot_tokens``;
- ``exercises``: ``check`` and ``run_check``, the front door to each notebook's checkers (``exercises_NN``);
- ``ddp_worker``: the data-parallel worker that notebook 07 starts (``from course import ddp_worker``);
- ``parallel_worker``: notebook 11's worker (FSDP2, pipeline, context and vocabulary parallel), with its
  models, batches and single-process references in ``parallel_setups``;
- ``launch``: how both workers start their ranks, watch their progress and say where each got.

The take-home checker, ``label_checks.py``, is not part of the package: it sits beside the notebooks, one
file to copy.
"""

import importlib

_HOME = {
    **dict.fromkeys(["setup", "seq_to_logits", "lengths_to_mask", "reference_cross_entropy"], "helpers"),
    **dict.fromkeys(["COLORS", "PALETTE", "plot_heatmap", "plot_mask", "plot_tokens"], "plotting"),
    **dict.fromkeys(["check", "run_check"], "exercises"),
}
__all__ = sorted(_HOME)


def __getattr__(name):
    """Load ``name`` from its module on first use (a worker process importing ``course.ddp_worker`` then
    loads neither matplotlib nor the checkers)."""
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; it offers {__all__}")


def __dir__():
    return __all__
