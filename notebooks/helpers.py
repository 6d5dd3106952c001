"""Shared helpers for the masked cross-entropy lesson.

Every notebook starts with ``from helpers import ...``; the tests import the same module.
Each function checks its arguments and says what was wrong and what it expected.
"""

import math

import torch
import torch.nn.functional as F

__all__ = ["setup", "seq_to_logits", "lengths_to_mask", "reference_cross_entropy", "plot_heatmap", "check"]


def setup(seed=0):
    """Seed torch and set print options, so every notebook starts the same way.

    >>> setup(0)
    >>> torch.tensor([1 / 3])
    tensor([0.3333])
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    torch.manual_seed(seed)
    torch.set_printoptions(precision=4, sci_mode=False)
    try:  # figures small enough to keep each notebook file light
        import matplotlib

        matplotlib.rcParams.update({"figure.dpi": 72, "figure.figsize": (6, 3)})
    except ImportError:  # pragma: no cover - matplotlib is in requirements.txt
        pass


def _as_id_tensor(seq, what):
    """Return ``seq`` as a 1-D int64 tensor, or raise a clear error."""
    if isinstance(seq, torch.Tensor):
        if seq.dtype.is_floating_point or seq.dtype.is_complex or seq.dtype == torch.bool:
            raise TypeError(f"{what} must hold integer class ids, got a {seq.dtype} tensor")
        tensor = seq.long()
    elif isinstance(seq, (list, tuple)):
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in seq):
            raise TypeError(f"{what} must hold integer class ids, got {list(seq)!r}")
        tensor = torch.tensor(seq, dtype=torch.long)
    else:
        raise TypeError(f"{what} must be a list of ints or an integer tensor, got {type(seq).__name__}")
    if tensor.dim() != 1:
        raise ValueError(f"{what} must be 1-D (one class id per position), got shape {tuple(tensor.shape)}")
    return tensor


def seq_to_logits(seq, num_classes=10, score=1000.0):
    """One-hot "dummy logits": ``score`` at each predicted class, 0 elsewhere.

    The vectorised form of the gist's ``seq_to_logit`` loop. Returns a float32 tensor
    of shape ``(len(seq), num_classes)``.

    >>> seq_to_logits([2, 0], num_classes=3, score=5)
    tensor([[0., 0., 5.],
            [5., 0., 0.]])
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise ValueError(f"score must be a finite number, got {score!r}")
    ids = _as_id_tensor(seq, "seq")
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
    return F.one_hot(ids, num_classes).float() * score


def lengths_to_mask(lengths, max_len=None):
    """Boolean mask, True at real positions: ``mask[b, t] = t < lengths[b]``.

    >>> lengths_to_mask([3, 1], max_len=4)
    tensor([[ True,  True,  True, False],
            [ True, False, False, False]])
    """
    lengths = _as_id_tensor(lengths, "lengths")
    if (lengths < 0).any():
        raise ValueError(f"lengths must be >= 0 (one per sequence), got {lengths.tolist()}")
    longest = int(lengths.max()) if len(lengths) else 0
    if max_len is None:
        max_len = longest
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < longest:
        raise ValueError(f"max_len must be an int >= the longest length ({longest}), got {max_len!r}")
    return torch.arange(max_len) < lengths[:, None]


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
    if not isinstance(input, torch.Tensor) or not input.dtype.is_floating_point:
        raise TypeError(f"input must be a floating-point tensor of logits, got {type(input).__name__}")
    if not isinstance(target, torch.Tensor) or target.dtype != torch.long:
        got = target.dtype if isinstance(target, torch.Tensor) else type(target).__name__
        raise TypeError(f"target must be an int64 (torch.long) tensor of class ids, got {got}")
    if input.dim() < 2 or target.shape != input.shape[:1] + input.shape[2:]:
        raise ValueError(
            f"shapes do not fit: input {tuple(input.shape)} needs the class dimension at dim 1, "
            f"(N, C) or (N, C, d1, ...), and target (N, d1, ...); got target {tuple(target.shape)}"
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    num_classes = input.shape[1]
    if weight is None:
        weight = torch.ones(num_classes, dtype=input.dtype)
    if weight.shape != (num_classes,):
        raise ValueError(f"weight must have shape ({num_classes},), one per class, got {tuple(weight.shape)}")
    kept = target != ignore_index
    if ((target[kept] < 0) | (target[kept] >= num_classes)).any():
        raise ValueError(f"targets must be ignore_index ({ignore_index}) or ids 0..{num_classes - 1}")
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


def plot_heatmap(values, title="", xlabel="class", ylabel="position", ax=None, annotate=True):
    """Draw a 2-D tensor as a heatmap with one shared style; returns the matplotlib Axes.

    >>> ax = plot_heatmap(torch.eye(3), title="identity")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if not isinstance(values, torch.Tensor) or values.dim() != 2:
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"values must be a 2-D tensor (rows x columns), got {got}")
    data = values.detach().float()
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * data.shape[1] + 1.5, 0.4 * data.shape[0] + 1.0))
    image = ax.imshow(data.numpy(), cmap="viridis", aspect="auto")
    ax.figure.colorbar(image, ax=ax)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.set_xticks(range(data.shape[1]))
    ax.set_yticks(range(data.shape[0]))
    if annotate and data.numel() <= 120:
        middle = (data.max() + data.min()).item() / 2
        for row, col in torch.cartesian_prod(*map(torch.arange, data.shape)).tolist():
            v = data[row, col].item()
            color = "black" if v > middle else "white"
            ax.text(col, row, f"{v:.3g}", ha="center", va="center", color=color, fontsize=8)
    return ax


# --- exercises -----------------------------------------------------------------------------
# Each exercise registers a checker: it runs the learner's answer on cases of its own and
# raises AssertionError with a message that says what differs.

_EXERCISES = {}


def _exercise(name, hint):
    def register(checker):
        _EXERCISES[name] = (checker, hint)
        return checker

    return register


def run_check(name, answer):
    """Return ``(passed, message)`` for an exercise answer; ``check`` prints the message."""
    if name not in _EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; expected one of {sorted(_EXERCISES)}")
    checker, hint = _EXERCISES[name]
    if answer is None or answer is Ellipsis:
        return False, f"{name}: not answered yet. Hint: {hint}"
    try:
        checker(answer)
    except AssertionError as err:
        return False, f"{name}: not yet. {err}. Hint: {hint}"
    except Exception as err:  # the learner's code raised: say which error, no traceback
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return False, f"{name}: your answer raised {type(err).__name__}: {first_line}. Hint: {hint}"
    return True, f"{name}: correct."


def check(name, answer):
    """Check an exercise answer and print one line: a pass, or what failed and a hint.

    >>> check("00-predict-the-loss", 500)
    PASS 00-predict-the-loss: correct.
    """
    passed, message = run_check(name, answer)
    print(("PASS " if passed else "TRY AGAIN ") + message)


# Each notebook's exercises, in its own section (keep the section markers).
# --- 00 exercises ---
@_exercise("00-predict-the-loss", hint="count the wrong predictions among the kept targets only")
def _check_predict_the_loss(answer):
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    assert isinstance(answer, (int, float)), f"expected a number, got {type(answer).__name__}"
    assert abs(answer - 2000 / 6) > 0.01, "333.33 divides by all 6 positions, masked ones included"
    assert abs(answer - 500) < 0.01, f"{answer} is not the loss of these predictions"


@_exercise("00-mask-prefix", hint="clone the targets, then assign -1 to the slice [:n]")
def _check_mask_prefix(mask_prefix):
    targets = torch.tensor([9, 1, 3, 7])
    for n, want in [(2, [-1, -1, 3, 7]), (0, [9, 1, 3, 7]), (4, [-1, -1, -1, -1])]:
        got = mask_prefix(targets, n)
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert got.tolist() == want, f"mask_prefix([9, 1, 3, 7], {n}) should be {want}, got {got.tolist()}"
        assert targets.tolist() == [9, 1, 3, 7], "the input targets were changed; work on a copy"


# --- 01 exercises ---
@_exercise("01-min-score", hint="try s = 0, 1, 2, ... in log(1 + (C-1)·e^-s) until it drops below max_loss")
def _check_min_score(answer):
    for classes, max_loss in ((10, 0.01), (2, 0.5), (2, 0.7), (1000, 0.001)):
        expected = next(s for s in range(100) if math.log(1 + (classes - 1) * math.exp(-s)) < max_loss)
        got = answer(classes, max_loss)
        assert got is not None, "min_score returned None; return an int"
        assert got == expected, f"for C={classes}, max_loss={max_loss} expected {expected}, got {got!r}"


@_exercise("01-batch-loss", hint="average the two closed forms; at s=1000 use a form without e^s")
def _check_batch_loss(answer):
    for s, classes, right, wrong in ((1.0, 10, 5, 1), (1000.0, 10, 2, 1), (1000.0, 10, 3, 0), (2.0, 3, 0, 4)):
        logits = seq_to_logits([0] * (right + wrong), classes, s)
        expected = F.cross_entropy(logits, torch.tensor([0] * right + [1] * wrong)).item()
        got = answer(s, classes, right, wrong)
        assert got is not None, "batch_loss returned None; return a float"
        got = float(got)
        assert math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-6), (
            f"for s={s}, C={classes}, {right} right and {wrong} wrong expected {expected:.4f}, got {got:.4f}"
        )


# --- 02 exercises ---
@_exercise("02-collate", hint="pad each key with its own value; the mask compares positions with lengths")
def _check_collate(collate):
    pairs = [([3, 1, 4], [1, 0, 2]), ([5], [2]), ([9, 2], [0, 1])]
    batch = [{"input_ids": torch.tensor(x), "labels": torch.tensor(y)} for x, y in pairs]
    want = {"input_ids": [[3, 1, 4], [5, 0, 0], [9, 2, 0]], "labels": [[1, 0, 2], [2, -100, -100], [0, 1, -100]]}
    want["attention_mask"] = [[True, True, True], [True, False, False], [True, True, False]]
    one = {"input_ids": [[5]], "labels": [[2]], "attention_mask": [[True]]}  # a batch of one: nothing to pad
    for given, wanted in [(batch, want), (batch[1:2], one)]:
        got = collate(given)
        assert got is not None, "collate returned None: fill in its body"
        assert isinstance(got, dict) and set(got) == set(wanted), f"return a dict with the keys {sorted(wanted)}"
        assert got["attention_mask"].dtype == torch.bool, "attention_mask should be a bool tensor"
        for key in wanted:
            assert got[key].tolist() == wanted[key], f"{key} should be {wanted[key]}, got {got[key].tolist()}"


@_exercise("02-causal-targets", hint="append EOS, pad with it, shift by one, then mask by length, not value")
def _check_causal_targets(causal_pair):
    cases = [  # (eos_id, token lists, inputs, targets)
        (0, [[5, 2, 7], [3, 8]], [[5, 2, 7], [3, 8, 0]], [[2, 7, 0], [8, 0, -100]]),
        (9, [[4], [1, 2, 3]], [[4, 9, 9], [1, 2, 3]], [[9, -100, -100], [2, 3, 9]]),
        (9, [[1, 2], [3, 4]], [[1, 2], [3, 4]], [[2, 9], [4, 9]]),
        (0, [[5, 0, 7], [3]], [[5, 0, 7], [3, 0, 0]], [[0, 7, 0], [0, -100, -100]]),  # EOS id inside a text
    ]
    for eos, seqs, want_x, want_y in cases:
        got = causal_pair([torch.tensor(s) for s in seqs], eos)
        assert got is not None, "causal_pair returned None: fill in its body"
        x, y = got
        assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor), "return (inputs, targets) tensors"
        case = f"for {seqs} and eos_id={eos}"
        assert x.tolist() == want_x, f"{case} inputs should be {want_x}, got {x.tolist()}"
        assert y.tolist() == want_y, f"{case} targets should be {want_y}, got {y.tolist()}"


# --- 03 exercises ---
@_exercise("03-out-of-range", hint="a target is fine when it equals ignore_index or lies in 0..num_classes-1")
def _check_out_of_range(answer):
    cases = [([2, 0, -100, 5, -1], 5, -100), ([2, -1, -1, -2, 4], 5, -1), ([0, 3, 0, -100, 2], 3, 0)]
    for target, num_classes, ignore_index in cases:
        t = torch.tensor(target)
        expected = [x != ignore_index and not 0 <= x < num_classes for x in target]
        got = answer(t, num_classes, ignore_index=ignore_index)
        assert isinstance(got, torch.Tensor), f"expected a bool tensor, got {type(got).__name__}"
        assert got.dtype == torch.bool, f"expected dtype torch.bool (a long mask indexes), got {got.dtype}"
        assert got.tolist() == expected, (
            f"for target {target}, num_classes={num_classes}, ignore_index={ignore_index} "
            f"expected {expected}, got {got.tolist()}"
        )


@_exercise(
    "03-masked-mean", hint="put any valid id at ignored targets, multiply by the mask, divide by the number kept"
)
def _check_masked_mean(answer):
    gen = torch.Generator().manual_seed(3)
    for ignore_index in (-100, -1, 0):
        logits = torch.randn(7, 5, generator=gen)
        target = torch.tensor([3, ignore_index, 1, 4, ignore_index, 2, 0 if ignore_index else 1])
        expected = F.cross_entropy(logits, target, ignore_index=ignore_index).item()
        got = answer(logits, target, ignore_index=ignore_index)
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert math.isclose(got.item(), expected, rel_tol=1e-5), (
            f"for ignore_index={ignore_index} expected {expected:.4f}, got {got.item():.4f}"
        )


# --- 04 exercises ---
@_exercise("04-guarded-mean", hint="keep only masked-in losses (others may be nonzero); never divide by 0")
def _check_guarded_mean(answer):
    losses = torch.tensor([[1.0, 2.0, 7.0], [3.0, 5.0, 9.0]])
    for mask, want in [([[1, 1, 0], [1, 0, 0]], 2.0), ([[0, 0, 0]] * 2, 0.0), ([[1, 1, 1]] * 2, 4.5)]:
        got = answer(losses, torch.tensor(mask, dtype=torch.bool))
        assert got is not None, "guarded_mean returned None: fill in its body"
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert abs(got.item() - want) < 1e-5, f"for mask {mask} expected {want:.4f}, got {got.item():.4f}"


@_exercise(
    "04-weighted-mean",
    hint="select the kept targets before indexing weight: with ignore_index=-1, weight[-1] is the last class",
)
def _check_weighted_mean(answer):
    logits, weight = torch.randn(6, 3, generator=torch.Generator().manual_seed(4)), torch.tensor([0.5, 2, 3])
    cases = ([0, 1, 2, 2, 1, 0], -100), ([2, -100, 0, -100, 2, 1], -100), ([2, -1, 0, -1, 2, 1], -1)
    for ids, ignore in cases:
        target = torch.tensor(ids)
        losses = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore, reduction="none")
        want = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore).item()
        got = answer(losses, target, weight, ignore)
        assert got is not None, "weighted_mean returned None: fill in its body"
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert abs(got.item() - want) < 1e-5, f"for targets {ids} expected {want:.4f}, got {got.item():.4f}"


@_exercise("04-micro-batch-loss", hint="a micro-batch's 'mean' divides by its own kept count, not num_items")
def _check_micro_batch_loss(answer):
    logits = torch.randn(9, 4, generator=torch.Generator().manual_seed(5), requires_grad=True)
    target = torch.tensor([1, -100, -100, -100, 3, 0, 2, -100, 1])  # micro-batches keep 1, 0 and 4 targets
    parts = [answer(logits[a:b], target[a:b], (target != -100).sum()) for a, b in ((0, 1), (1, 4), (4, 9))]
    assert all(p is not None for p in parts), "micro_batch_loss returned None: fill in its body"
    assert all(isinstance(p, torch.Tensor) for p in parts), "expected a tensor from every micro-batch"
    got, full = sum(parts), F.cross_entropy(logits, target)
    message = f"losses add up to {got.item():.4f}, not {full.item():.4f}"
    if math.isnan(got.item()):
        message += " (a micro-batch with 0 kept targets gives nan under 'mean')"
    assert abs(got.item() - full.item()) < 1e-5, message
    grads = torch.autograd.grad(got, logits)[0], torch.autograd.grad(full, logits)[0]
    assert torch.allclose(*grads, atol=1e-6), "the losses match the full batch, the gradients do not"
