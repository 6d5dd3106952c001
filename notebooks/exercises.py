"""The exercise checkers: ``check(name, answer)`` prints PASS, or what is off and a hint.

Each exercise registers a checker that runs the learner's answer on cases of its own and raises
AssertionError with a message that says what differs. One section per notebook, in order.
"""

import math
import numbers

import torch
import torch.nn.functional as F

from helpers import seq_to_logits

__all__ = ["check", "run_check"]

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
        return False, f"{name}: not yet. {str(err).rstrip('.')}. Hint: {hint}"
    except Exception as err:  # the learner's code raised: say which error, no traceback
        first_line = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else ""
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
    assert isinstance(answer, numbers.Real) and not isinstance(answer, bool), (
        f"expected a number, got {type(answer).__name__}"
    )
    assert math.isfinite(answer), f"expected a finite number, got {answer}: the loss here is finite"
    assert abs(answer - 2000 / 6) > 0.01, "333.33 divides by all 6 positions, masked ones included"
    assert abs(answer - 2000) > 0.01, "2000 is the sum of the kept losses; the default reduction is their mean"
    assert abs(answer - 500) < 0.01, f"{answer} is not the loss of these predictions"


@_exercise("00-mask-prefix", hint="clone the targets, then assign -1 to the slice [:n]")
def _check_mask_prefix(mask_prefix):
    targets = torch.tensor([9, 1, 3, 7])
    for n, want in [(2, [-1, -1, 3, 7]), (0, [9, 1, 3, 7]), (4, [-1, -1, -1, -1])]:
        got = mask_prefix(targets, n)
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert got.dtype == targets.dtype, f"targets are {targets.dtype} class ids; got a {got.dtype} tensor back"
        assert got.tolist() == want, f"mask_prefix([9, 1, 3, 7], {n}) should be {want}, got {got.tolist()}"
        assert targets.tolist() == [9, 1, 3, 7], "the input targets were changed; work on a copy"


# --- 01 exercises ---
@_exercise("01-min-score", hint="try s = 0, 1, 2, ... in log(1 + (C-1)·e^-s) until it drops below max_loss")
def _check_min_score(answer):
    for classes, max_loss in ((10, 0.01), (2, 0.5), (2, 0.7), (1000, 0.001), (2, 2.0)):  # the last one: s = 0
        expected = next(s for s in range(100) if math.log(1 + (classes - 1) * math.exp(-s)) < max_loss)
        got = answer(classes, max_loss)
        assert got is not None, "min_score returned None; return an int"
        assert isinstance(got, numbers.Integral), f"return a whole-number score (an int), got {got!r}"
        assert got == expected, f"for C={classes}, max_loss={max_loss} expected {expected}, got {got!r}"


@_exercise(
    "01-batch-loss",
    hint="weigh each closed form by its number of rows, divide by all rows; at s=1000 use a form without e^s",
)
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
    # a real token with the pad id 0 (an EOS used as pad) and a masked prompt label: no value test finds the padding
    tricky = [
        {"input_ids": torch.tensor([0, 7, 2]), "labels": torch.tensor([-100, 5, 1])},
        {"input_ids": torch.tensor([4]), "labels": torch.tensor([3])},
    ]
    want_tricky = {"input_ids": [[0, 7, 2], [4, 0, 0]], "labels": [[-100, 5, 1], [3, -100, -100]]}
    want_tricky["attention_mask"] = [[True, True, True], [True, False, False]]
    for given, wanted in [(batch, want), (batch[1:2], one), (tricky, want_tricky)]:
        got = collate(given)
        assert got is not None, "collate returned None: fill in its body"
        assert isinstance(got, dict) and set(got) == set(wanted), f"return a dict with the keys {sorted(wanted)}"
        assert got["attention_mask"].dtype == torch.bool, "attention_mask should be a bool tensor"
        for key in wanted:
            message = f"{key} should be {wanted[key]}, got {got[key].tolist()}"
            if key == "attention_mask" and given is tricky:
                message += " (a real token can have the pad id, and a real label can be -100: use the lengths)"
            assert got[key].tolist() == wanted[key], message


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
    cases.append(([[2, -100, 9], [7, 1, -100]], 5, -100))  # a (B, T) batch: the answer keeps its shape
    for target, num_classes, ignore_index in cases:
        t = torch.tensor(target)
        expected = ((t != ignore_index) & ((t < 0) | (t >= num_classes))).tolist()
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
    hint="divide the summed losses by the weights of the kept targets; select those targets before indexing weight",
)
def _check_weighted_mean(answer):
    logits, weight = torch.randn(6, 3, generator=torch.Generator().manual_seed(4)), torch.tensor([0.5, 2, 3])
    cases = ([0, 1, 2, 2, 1, 0], -100), ([2, -100, 0, -100, 2, 1], -100), ([2, -1, 0, -1, 2, 1], -1)
    cases += (([2, 0, 1, 0, 2, 1], 0),)  # the sentinel is a real class id, as a pad id can be
    for ids, ignore in cases:
        target = torch.tensor(ids)
        losses = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore, reduction="none")
        want = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore).item()
        got = answer(losses, target, weight, ignore)
        assert got is not None, "weighted_mean returned None: fill in its body"
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        case = f"for targets {ids}, weight {weight.tolist()} and ignore_index={ignore}"
        kept = target != ignore
        if abs(got.item() - losses.sum().item() / kept.sum().item()) < 1e-5:
            case += ": that divides by the number of kept targets, not by the sum of their weights"
        assert abs(got.item() - want) < 1e-5, f"{case} expected {want:.4f}, got {got.item():.4f}"


@_exercise("04-micro-batch-loss", hint="a micro-batch's 'mean' divides by its own kept count, not num_items")
def _check_micro_batch_loss(answer):
    logits = torch.randn(9, 4, generator=torch.Generator().manual_seed(5), requires_grad=True)
    target = torch.tensor([1, -100, -100, -100, 3, 0, 2, -100, 1])  # micro-batches keep 1, 0 and 4 targets
    parts = [answer(logits[a:b], target[a:b], (target != -100).sum()) for a, b in ((0, 1), (1, 4), (4, 9))]
    assert all(p is not None for p in parts), "micro_batch_loss returned None: fill in its body"
    assert all(isinstance(p, torch.Tensor) for p in parts), "expected a tensor from every micro-batch"
    assert all(p.requires_grad for p in parts), "return a loss autograd can follow back to the logits (no .detach())"
    got, full = sum(parts), F.cross_entropy(logits, target)
    message = f"losses add up to {got.item():.4f}, not {full.item():.4f}"
    if math.isnan(got.item()):
        message += " (a micro-batch with 0 kept targets gives nan under 'mean')"
    assert abs(got.item() - full.item()) < 1e-5, message
    grads = torch.autograd.grad(got, logits)[0], torch.autograd.grad(full, logits)[0]
    assert torch.allclose(*grads, atol=1e-6), "the losses match the full batch, the gradients do not"
