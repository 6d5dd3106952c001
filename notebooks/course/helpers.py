"""The course's tensor tools: dummy logits, masks from lengths, a reference cross-entropy, and ``setup``.

Notebooks import these names from the package (``from course import seq_to_logits, setup``); the tests
import this module. Each function checks its arguments and says what was wrong and what it expected.
Figures live in ``course/plotting.py``, the exercise checkers in ``course/exercises*.py``.
"""

import math
import numbers
import reprlib

import torch
import torch.nn.functional as F

__all__ = ["setup", "seq_to_logits", "lengths_to_mask", "reference_cross_entropy"]


def setup(seed=0):
    """Seed torch, print 4 decimals, and set the lesson's figure style.

    >>> setup(0)
    >>> torch.tensor([1 / 3])
    tensor([0.3333])
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    torch.manual_seed(seed)
    torch.set_printoptions(precision=4, sci_mode=False)
    try:
        from course.plotting import use_style
    except ImportError:  # pragma: no cover - matplotlib is in requirements.txt
        return
    use_style()


def _as_int_tensor(values, noun, what, per):
    """Return ``values`` (a list of ints or an integer tensor) as a 1-D int64 tensor, or raise clearly.

    ``noun`` names what the values are ("class ids"), ``per`` what one value stands for ("one class id
    per position"). The shape is checked before the dtype: a nested list is a shape mistake first.
    """
    if isinstance(values, torch.Tensor):
        if values.dim() != 1:
            raise ValueError(f"{what} must be 1-D ({per}), got shape {tuple(values.shape)}")
        if values.dtype.is_floating_point or values.dtype.is_complex or values.dtype == torch.bool:
            raise TypeError(f"{what} must hold integer {noun}, got a {values.dtype} tensor")
        return values.long()
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{what} must be a list of ints or an integer tensor, got {type(values).__name__}")
    nested = [x for x in values if isinstance(x, (list, tuple)) or getattr(x, "ndim", 0) >= 1]
    if nested:
        raise ValueError(
            f"{what} must be 1-D ({per}), got a nested {type(values).__name__} holding {reprlib.repr(nested[0])}"
        )
    bad = [x for x in values if isinstance(x, bool) or not isinstance(x, numbers.Integral)]
    if bad:
        raise TypeError(f"{what} must hold integer {noun}, got {bad[0]!r} ({type(bad[0]).__name__})")
    return torch.tensor([int(x) for x in values], dtype=torch.long)


def seq_to_logits(seq, num_classes=10, score=1000.0):
    """One-hot "dummy logits": ``score`` at each predicted class, 0 elsewhere.

    The vectorised form of the gist's ``seq_to_logit`` loop. Returns a float32 tensor
    of shape ``(len(seq), num_classes)``. ``score`` must be finite and >= 0 (0 gives uniform rows).

    >>> seq_to_logits([2, 0], num_classes=3, score=5)
    tensor([[0., 0., 5.],
            [5., 0., 0.]])
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if isinstance(score, bool) or not isinstance(score, numbers.Real) or not math.isfinite(score):
        raise ValueError(f"score must be a finite number, got {score!r}")
    if score < 0:
        raise ValueError(
            f"score must be >= 0, got {score!r}: it is the logit of each predicted class (0 at the others), "
            "and a negative score would make the predicted class the least likely one"
        )
    ids = _as_int_tensor(seq, "class ids", "seq", "one class id per position")
    if (ids < 0).any():
        raise ValueError(
            f"seq holds a negative id ({ids.min().item()}): negative ids mark ignored targets, "
            "not predictions; build logits from the predicted classes, 0..num_classes-1"
        )
    if (ids >= num_classes).any():
        raise ValueError(
            f"seq holds class id {ids.max().item()}, out of range for num_classes={num_classes} "
            f"(expected ids 0..{num_classes - 1})"
        )
    return F.one_hot(ids, int(num_classes)).float() * float(score)


def lengths_to_mask(lengths, max_len=None):
    """Boolean mask, True at real positions: ``mask[b, t] = t < lengths[b]``.

    >>> lengths_to_mask([3, 1], max_len=4)
    tensor([[ True,  True,  True, False],
            [ True, False, False, False]])
    """
    lengths = _as_int_tensor(lengths, "lengths (whole numbers of positions)", "lengths", "one length per sequence")
    if (lengths < 0).any():
        raise ValueError(f"lengths must be >= 0 (one per sequence), got {lengths.tolist()}")
    longest = int(lengths.max()) if len(lengths) else 0
    if max_len is None:
        max_len = longest
    if isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral) or max_len < longest:
        raise ValueError(f"max_len must be an int >= the longest length ({longest}), got {max_len!r}")
    return torch.arange(int(max_len)) < lengths[:, None]


def _check_reference_arguments(input, target, weight, reduction, label_smoothing):
    if not isinstance(input, torch.Tensor) or not input.dtype.is_floating_point:
        got = f"a {input.dtype} tensor" if isinstance(input, torch.Tensor) else type(input).__name__
        raise TypeError(f"input must be a floating-point tensor of logits, got {got}")
    if not isinstance(target, torch.Tensor) or target.dtype != torch.long:
        got = f"a {target.dtype} tensor" if isinstance(target, torch.Tensor) else type(target).__name__
        raise TypeError(f"target must be an int64 (torch.long) tensor of class ids, got {got}")
    if input.dim() < 2 or target.shape != input.shape[:1] + input.shape[2:]:
        raise ValueError(
            f"shapes do not fit: input {tuple(input.shape)} needs the class dimension at dim 1, "
            f"(N, C) or (N, C, d1, ...), and target (N, d1, ...); got target {tuple(target.shape)}"
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real):
        raise TypeError(
            f"label_smoothing must be a number in [0, 1], got {label_smoothing!r} ({type(label_smoothing).__name__})"
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    num_classes = input.shape[1]
    if weight is not None:
        if not isinstance(weight, torch.Tensor) or not weight.dtype.is_floating_point:
            got = f"a {weight.dtype} tensor" if isinstance(weight, torch.Tensor) else type(weight).__name__
            raise TypeError(
                f"weight must be a floating-point tensor of shape ({num_classes},), one weight per class, "
                f"got {got}; for a list, pass torch.tensor(weights)"
            )
        if weight.shape != (num_classes,):
            raise ValueError(f"weight must have shape ({num_classes},), one per class, got {tuple(weight.shape)}")


def reference_cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy with class-index targets, written from the PyTorch documentation.

    l_n = -w[y_n] * log_softmax(x_n)[y_n] for kept targets (y_n != ignore_index), 0 otherwise;
    'mean' divides the sum by the sum of w[y_n] over kept targets, 'sum' adds, 'none' keeps
    the target's shape. Label smoothing mixes in -sum_c w[c] * log_softmax(x_n)[c] / C.
    Shapes: input (N, C) or (N, C, d1, ...), target (N,) or (N, d1, ...).

    >>> logits = seq_to_logits([1, 2], num_classes=3, score=1.0)
    >>> round(reference_cross_entropy(logits, torch.tensor([1, -100])).item(), 4)
    0.5514
    """
    _check_reference_arguments(input, target, weight, reduction, label_smoothing)
    num_classes = input.shape[1]
    if weight is None:
        weight = torch.ones(num_classes, dtype=input.dtype)
    kept = target != ignore_index
    bad = (kept & ((target < 0) | (target >= num_classes))).nonzero().tolist()
    if bad:
        where = ", ".join(map(str, bad[0]))
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ValueError(
            f"target[{where}] is {target[tuple(bad[0])].item()}{more}: targets must be ignore_index "
            f"({ignore_index}) or class ids 0..{num_classes - 1}"
        )
    log_p = input.movedim(1, -1).log_softmax(dim=-1)  # (N, d1, ..., C)
    safe = torch.where(kept, target, 0)
    w_y = weight[safe] * kept
    nll = -log_p.gather(-1, safe.unsqueeze(-1)).squeeze(-1) * w_y
    smooth = -(log_p * weight).sum(-1) * kept
    losses = (1 - label_smoothing) * nll + label_smoothing / num_classes * smooth
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / w_y.sum()
