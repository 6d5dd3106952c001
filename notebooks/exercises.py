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
BLANK = "fill in its body"  # what a checker says when the learner's function returned None
LATER = "(A hint comes with your first attempt.)"


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
        return False, f"{name}: not answered yet: replace None with your answer. {LATER}"
    try:
        checker(answer)
    except AssertionError as err:
        if BLANK in str(err):  # a blank starter: no hint before a first attempt
            return False, f"{name}: not answered yet: {str(err).rstrip('.')}. {LATER}"
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
        assert got is not None, "mask_prefix returned None: fill in its body"
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
        assert got is not None, "min_score returned None: fill in its body and return an int"
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
        assert got is not None, "batch_loss returned None: fill in its body and return a float"
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
        assert got is not None, "out_of_range returned None: fill in its body"
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
        assert got is not None, "masked_cross_entropy returned None: fill in its body"
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


# --- 05 exercises ---
@_exercise(
    "05-response-labels",
    hint="target t is token t + 1: keep t from prompt_len - 1 to seq_len - 2; mask by length, not by value",
)
def _check_response_labels(response_labels):
    eos = 9
    cases = [  # (seqs, prompt_lens, seq_lens, labels), padded with the EOS id 9
        ([[4, 5, 8, 6, 9, 9], [1, 8, 2, 3, 7, 9]], [3, 2], [5, 6], [[-100, -100, 6, 9, -100], [-100, 2, 3, 7, 9]]),
        ([[9, 8, 9, 9]], [2], [3], [[-100, 9, -100]]),  # the EOS id inside the prompt; an empty response
        ([[3, 9, 8, 5, 9, 9, 9]], [3], [5], [[-100, -100, 5, 9, -100, -100]]),
    ]
    for seqs, prompt_lens, seq_lens, want in cases:
        given = torch.tensor(seqs)
        got = response_labels(given, torch.tensor(prompt_lens), torch.tensor(seq_lens))
        assert got is not None, "response_labels returned None: fill in its body"
        assert isinstance(got, tuple) and len(got) == 2, "return a pair (inputs, labels)"
        x, y = got
        assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor), "return (inputs, labels) as tensors"
        assert given.tolist() == seqs, "seqs was changed in place; clone the targets before masking"
        case = f"for seqs {seqs}, prompt_lens {prompt_lens}, seq_lens {seq_lens} (EOS id {eos})"
        assert x.tolist() == [s[:-1] for s in seqs], f"{case} the inputs should be seqs[:, :-1]"
        assert y.tolist() == want, f"{case} the labels should be {want}, got {y.tolist()}"


@_exercise("05-perplexity", hint="sum the losses (reduction='sum') and the kept counts over all batches, divide once")
def _check_perplexity(perplexity):
    gen = torch.Generator().manual_seed(5)
    keeps = [[[1, 1, 1], [1, 0, 0]], [[0, 0]], [[1, 1], [1, 1], [1, 1]]]  # 4, 0 and 6 kept targets
    batches = []
    for keep in keeps:
        keep = torch.tensor(keep, dtype=torch.bool)
        logits = torch.randn(*keep.shape, 4, generator=gen) * 2
        batches.append((logits, torch.randint(0, 4, keep.shape, generator=gen).masked_fill(~keep, -100)))
    for chosen in (batches, batches[:1]):
        logits = torch.cat([lg.flatten(0, 1) for lg, _ in chosen])
        labels = torch.cat([lb.flatten() for _, lb in chosen])
        want = F.cross_entropy(logits, labels).exp().item()
        got = perplexity(chosen)
        assert got is not None, "perplexity returned None: fill in its body"
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        assert isinstance(got, numbers.Real), f"expected a float, got {type(got).__name__}"
        assert not math.isnan(got), "got nan: a batch that keeps nothing adds 0 to the loss and 0 to the count"
        means = [F.cross_entropy(lg.flatten(0, 1), lb.flatten()).item() for lg, lb in chosen[::2]]
        guarded = [  # notebook 04's guarded mean, taken per batch: the empty batch gives 0
            F.cross_entropy(lg.flatten(0, 1), lb.flatten(), reduction="sum").item() / max((lb != -100).sum().item(), 1)
            for lg, lb in chosen
        ]
        averages = (math.exp(sum(means) / len(means)), sum(math.exp(m) for m in means) / len(means))
        averages += (math.exp(sum(guarded) / len(guarded)),)
        if len(chosen) > 1 and min(abs(got - a) for a in averages) < 1e-4:
            raise AssertionError(f"got {got:.4f}, an average of per-batch values; the batches keep 4, 0, 6 targets")
        assert not math.isclose(got, math.log(want), rel_tol=1e-5), f"got {got:.4f}, the mean loss: take its exp"
        assert math.isclose(got, want, rel_tol=1e-5), f"for {len(chosen)} batch(es) expected {want:.4f}, got {got:.4f}"


@_exercise("05-skip-empty-step", hint="divide the summed loss by kept.clamp(min=1); call opt.step() only if kept > 0")
def _check_skip_empty_step(train_step):
    torch.manual_seed(6)
    model, reference = torch.nn.Embedding(5, 5), torch.nn.Embedding(5, 5)  # ids (B, T) -> logits (B, T, 5)
    reference.load_state_dict(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    reference_opt = torch.optim.AdamW(reference.parameters(), lr=0.1)
    x, full = torch.tensor([[0, 1, 2], [3, 4, 0]]), torch.tensor([[1, 2, -100], [4, 0, 1]])
    empty = torch.full((2, 3), -100)
    for labels, name in ((full, "first batch"), (empty, "all-ignored batch"), (full, "third batch")):
        before = model.weight.detach().clone()
        got = train_step(model, opt, x, labels)
        assert got is not None, "train_step returned None: fill in its body and return the loss"
        got = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
        assert isinstance(got, numbers.Real), f"return the loss as a float, got {type(got).__name__}"
        if labels is empty:
            assert got == 0.0, f"the loss of an all-ignored batch should be 0.0, got {got}"
            assert torch.equal(model.weight, before), "the parameters changed on an all-ignored batch"
            continue
        want = F.cross_entropy(reference(x).flatten(0, 1), full.flatten())
        reference_opt.zero_grad()
        want.backward()
        reference_opt.step()
        assert math.isclose(got, want.item(), rel_tol=1e-5), f"{name}: loss {got:.4f}, expected {want.item():.4f}"
        extra = " (zero the gradients first; no step on the all-ignored batch)" if name == "third batch" else ""
        assert torch.allclose(model.weight, reference.weight, atol=1e-6), (
            f"{name}: the parameters differ from one AdamW step on the token-mean loss{extra}"
        )


# --- 06 exercises ---
@_exercise(
    "06-assistant-labels",
    hint="walk each row: after an assistant header, keep tokens up to and including the next end-of-turn",
)
def _check_assistant_labels(assistant_labels):
    # <|user|>=11 <|assistant|>=12 <|end|>=13, pad 0; the third chat was cut off inside an assistant turn
    ids = torch.tensor(
        [
            [11, 4, 13, 12, 4, 5, 13, 0, 0, 0],
            [11, 6, 13, 12, 9, 13, 11, 7, 13, 0],
            [11, 6, 7, 13, 12, 9, 10, 4, 5, 6],
        ]
    )
    want = [
        [-100, -100, -100, -100, 4, 5, 13, -100, -100, -100],
        [-100, -100, -100, -100, 9, 13, -100, -100, -100, -100],
        [-100, -100, -100, -100, -100, 9, 10, 4, 5, 6],
    ]
    for input_ids, wanted in [(ids, want), (ids[1:2, :6], [want[1][:6]])]:
        before = input_ids.clone()
        got = assistant_labels(input_ids, 12, 13)
        assert got is not None, "assistant_labels returned None: fill in its body"
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert torch.equal(input_ids, before), "input_ids were changed: build the labels in a new tensor"
        assert got.dtype == torch.long, f"labels should be int64 (torch.long), got {got.dtype}"
        assert got.shape == input_ids.shape, f"labels should have the shape of input_ids, got {tuple(got.shape)}"
        message = f"for input_ids {input_ids.tolist()} expected {wanted}, got {got.tolist()}"
        if got[:, :-1].tolist() == [row[1:] for row in wanted] or got[:, 1:].tolist() == [row[:-1] for row in wanted]:
            message += " (shifted by one: transformers labels line up with input_ids; the model shifts them)"
        assert got.tolist() == wanted, message


@_exercise("06-pack", hint="labels: [-100] + doc[1:] for each doc; positions: range(len(doc)) for each doc")
def _check_pack(pack):
    cases = [  # (docs, input_ids, labels, position_ids)
        ([[4, 5, 1], [6, 7, 8, 1]], [4, 5, 1, 6, 7, 8, 1], [-100, 5, 1, -100, 7, 8, 1], [0, 1, 2, 0, 1, 2, 3]),
        ([[9, 1], [3], [2, 2, 1]], [9, 1, 3, 2, 2, 1], [-100, 1, -100, -100, 2, 1], [0, 1, 0, 0, 1, 2]),
        ([[5, 6, 1]], [5, 6, 1], [-100, 6, 1], [0, 1, 2]),
    ]
    for docs, *wanted in cases:
        got = pack([list(doc) for doc in docs])
        assert got is not None, "pack returned None: fill in its body"
        keys = ("input_ids", "labels", "position_ids")
        assert isinstance(got, dict) and set(got) >= set(keys), f"return a dict with the keys {list(keys)}"
        for key, want in zip(keys, wanted, strict=True):
            value = got[key]
            assert isinstance(value, torch.Tensor), f"{key} should be a tensor, got {type(value).__name__}"
            assert value.dtype == torch.long, f"{key} should be int64 (torch.long), got {value.dtype}"
            assert value.shape == (1, len(want)), f"{key} should have shape (1, {len(want)}), got {tuple(value.shape)}"
            assert value.tolist() == [want], f"for docs {docs} {key} should be {[want]}, got {value.tolist()}"


# --- 07 exercises ---
@_exercise("07-rank-loss", hint="DDP averages the ranks' gradients: see the table of section 1")
def _check_rank_loss(answer):
    gen = torch.Generator().manual_seed(7)
    weight = torch.randn(4, 3, generator=gen, requires_grad=True)
    bias = torch.zeros(4, requires_grad=True)
    for kept in ([3, 5], [2, 0], [1, 4, 0, 2], [0, 0]):  # kept targets per rank
        world = len(kept)
        inputs = torch.randn(world, 6, 3, generator=gen)
        targets = torch.randint(0, 4, (world, 6), generator=gen)
        targets = targets.masked_fill(torch.arange(6) >= torch.tensor(kept)[:, None], -100)
        count = (targets != -100).sum()
        losses = [answer(inputs[r] @ weight.T + bias, targets[r], count, world) for r in range(world)]
        assert all(loss is not None for loss in losses), "rank_loss returned None: fill in its body"
        assert all(isinstance(loss, torch.Tensor) and loss.numel() == 1 for loss in losses), "return a scalar tensor"
        case = f"with kept targets per rank {kept}"
        assert all(torch.isfinite(loss) for loss in losses), f"{case} a rank's loss is not finite: guard the count"
        per_rank = [torch.autograd.grad(loss, (weight, bias), allow_unused=True) for loss in losses]
        ddp = [sum(g[i] if g[i] is not None else 0 for g in per_rank) / world for i in range(2)]  # DDP averages
        full = F.cross_entropy(inputs.reshape(-1, 3) @ weight.T + bias, targets.flatten(), reduction="sum")
        want = torch.autograd.grad(full / count.clamp(min=1), (weight, bias))
        assert all(torch.isfinite(torch.as_tensor(g)).all() for g in ddp), f"{case} the gradients hold nan"
        if count > 0 and all(torch.allclose(g * world, w, atol=1e-6) for g, w in zip(ddp, want, strict=True)):
            raise AssertionError(f"{case} the averaged gradients are world_size times too small (DDP averages)")
        assert all(torch.allclose(torch.as_tensor(g), w, atol=1e-6) for g, w in zip(ddp, want, strict=True)), (
            f"{case} DDP's averaged gradients differ from the whole batch's token mean"
        )


class _Projections(torch.overrides.TorchFunctionMode):
    """Records the rows of every matrix product whose output is vocabulary wide."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab, self.rows = vocab, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if name in {"matmul", "__matmul__", "__rmatmul__", "mm", "addmm", "linear", "einsum"}:
            if isinstance(out, torch.Tensor) and out.dim() >= 1 and out.shape[-1] == self.vocab:
                self.rows.append(out.numel() // self.vocab)
        return out


@_exercise(
    "07-chunked-eval-loss", hint="build the mask from targets, select the kept rows first (section 6), then split"
)
def _check_chunked_eval_loss(answer):
    gen = torch.Generator().manual_seed(8)
    vocab, chunk = 50, 3
    for kept in (torch.tensor([1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1]).bool(), torch.zeros(11, dtype=torch.bool)):
        hidden = torch.randn(11, 4, generator=gen).requires_grad_()  # as a model's: they require gradients
        weight = torch.randn(vocab, 4, generator=gen).requires_grad_()
        targets = torch.randint(0, vocab, (11,), generator=gen).masked_fill(~kept, -100)
        probe = _Projections(vocab)
        with probe:
            loss = answer(hidden, weight, targets, chunk)
        assert loss is not None, "chunked_eval_loss returned None: fill in its body"
        n = int(kept.sum())
        case = f"with {n} kept targets"
        assert isinstance(loss, torch.Tensor) and loss.numel() == 1, f"{case}, return a scalar tensor"
        with torch.no_grad():
            want = F.cross_entropy(hidden @ weight.T, targets, reduction="sum") / max(n, 1)
        assert torch.isfinite(loss), f"{case} your loss is {loss.item()}: guard the count"
        assert torch.allclose(loss, want, atol=1e-5), (
            f"{case} your loss is {loss.item():.4f}; the token mean is {want.item():.4f}"
        )
        assert loss.grad_fn is None, f"{case} your loss carries a graph for gradients: compute it under torch.no_grad()"
        assert max(probe.rows, default=0) <= chunk, (
            f"one projection covers {max(probe.rows)} rows, more than chunk_size"
        )
        assert sum(probe.rows) == n, f"{sum(probe.rows)} rows were projected, but only {n} are kept: select them first"


@_exercise(
    "07-loss-with-z",
    hint="the z-loss takes the same kept rows and the same denominator as the cross-entropy (section 8)",
)
def _check_loss_with_z(answer):
    gen = torch.Generator().manual_seed(9)
    target = torch.tensor([1, -100, -100, -100, 3, 0, 2, -100, 1])  # micro-batches keep 1, 0 and 4 targets
    parts = ((0, 1), (1, 4), (4, 9))
    large = torch.randn(9, 5, generator=gen)
    large[target == -100] += 40.0  # padding rows: large logits that no target constrains
    filled = large.detach().clone()
    filled[target == -100] = torch.finfo(torch.float32).min  # padding rows filled as notebook 03 fills them
    cases = (
        (1e-4, target, large),
        (1e-2, target, large),
        (1e-4, torch.full((9,), -100), large),
        (1e-4, target, filled),
    )
    for z_weight, labels, values in cases:
        logits = values.clone().requires_grad_()
        kept = labels != -100
        num_items = kept.sum()
        got = [answer(logits[a:b], labels[a:b], num_items, z_weight) for a, b in parts]
        assert all(g is not None for g in got), "loss_with_z returned None: fill in its body"
        assert all(isinstance(g, torch.Tensor) and g.numel() == 1 for g in got), "return a scalar tensor"
        total = sum(got)
        padding = "finfo.min" if values is filled else "large logits"
        case = f"with z_weight={z_weight}, {int(num_items)} kept targets and padding rows of {padding}"
        with torch.no_grad():
            ce = F.cross_entropy(logits, labels, reduction="sum") / num_items.clamp(min=1)
            z2 = logits.logsumexp(dim=-1).pow(2)
            z_kept = logits[kept].logsumexp(dim=-1).pow(2).sum()
            want = ce + z_weight * z_kept / num_items.clamp(min=1)
            wrong = {  # what common slips give, as the z-loss part of the sum
                "averaged over all 9 positions (mask, then .mean())": z_kept / 9,
                "averaged over each micro-batch's own rows (mask, then .mean(), per micro-batch)": sum(
                    logits[a:b][kept[a:b]].logsumexp(dim=-1).pow(2).sum() / (b - a) for a, b in parts
                ),
                "taken over every row, padding included": z2.sum() / num_items.clamp(min=1),
            }
        if torch.isnan(total) and num_items > 0 and values is filled:
            raise AssertionError(
                f"{case} the sum is nan: a row of finfo.min has z² = inf, and inf × 0 = nan; select the kept rows "
                "before logsumexp"
            )
        if torch.isnan(total) and num_items > 0:
            raise AssertionError(f"{case} the sum is nan: a micro-batch with no kept target must not take its own mean")
        assert torch.isfinite(total), f"{case} the sum is {total.item()}: guard num_items"
        z_part = (total.detach() - ce) / z_weight
        for name, value in wrong.items():
            if (
                num_items > 0
                and torch.isclose(z_part, value, rtol=1e-2)
                and not torch.isclose(value, z_kept / num_items)
            ):
                raise AssertionError(f"{case} your z-loss is {name}")
        assert torch.allclose(total, want, atol=1e-6, rtol=1e-6), (
            f"{case} your losses add up to {total.item():.6f}; cross-entropy mean plus z-loss: {want.item():.6f}"
        )
        grad, want_grad = (
            torch.autograd.grad(total, logits),
            torch.autograd.grad(
                F.cross_entropy(logits, labels, reduction="sum") / num_items.clamp(min=1)
                + z_weight * logits[kept].logsumexp(dim=-1).pow(2).sum() / num_items.clamp(min=1),
                logits,
            ),
        )
        assert torch.allclose(grad[0], want_grad[0], atol=1e-6), f"{case} the losses match but the gradients do not"
