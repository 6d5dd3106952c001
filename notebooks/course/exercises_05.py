"""Notebook 05's exercise checkers (training with masks); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs. A blank answer (None, or a function that still returns None) never reaches
a checker: the front door says it is not answered yet.
"""

import math
import numbers

import torch
import torch.nn.functional as F


def _wrong_labels(seqs, prompt_lens, seq_lens):
    """(labels, mistake) for the masks one position off that a learner writes, on one case."""
    y = torch.tensor(seqs)[:, 1:]
    t, first, end = torch.arange(y.shape[1]), torch.tensor(prompt_lens)[:, None], torch.tensor(seq_lens)[:, None]
    shifted = "target t is token t + 1, so "
    return [
        (
            y.masked_fill(~((t >= first) & (t < end - 1)), -100),
            f"the first response token is masked: {shifted}the response starts at target prompt_len - 1",
        ),
        (
            y.masked_fill(~((t >= first - 1) & (t < end - 2)), -100),
            "the final EOS is masked (a mask by value, labels == EOS, or a range one short): "
            f"{shifted}the EOS is target seq_len - 2, the last one to keep; without it the model never learns to stop",
        ),
        (
            y.masked_fill(~((t >= first - 1) & (t < end)), -100),
            f"one padding target after the EOS is kept: {shifted}the last real token is target seq_len - 2",
        ),
        (
            y.masked_fill(~((t >= first - 2) & (t < end - 1)), -100),
            f"the last prompt token is kept as a target: {shifted}the first response token is target "
            "prompt_len - 1, and the targets before it are prompt tokens",
        ),
        (
            y.masked_fill(~(t < end - 1), -100),
            "the prompt's targets are kept: mask every target before prompt_len - 1 (train on the response only)",
        ),
    ]


def _check_response_labels(response_labels):
    eos = 9
    cases = [  # (seqs, prompt_lens, seq_lens, labels, what the case is about), padded with the EOS id 9
        ([[4, 5, 8, 6, 9, 9], [1, 8, 2, 3, 7, 9]], [3, 2], [5, 6], [[-100, -100, 6, 9, -100], [-100, 2, 3, 7, 9]], ""),
        ([[9, 8, 9, 9]], [2], [3], [[-100, 9, -100]], " (the EOS id inside the prompt; an empty response)"),
        ([[3, 9, 8, 5, 9, 9, 9]], [3], [5], [[-100, -100, 5, 9, -100, -100]], ""),
        (
            [[2, 7, 9, 4, 9, 9]],
            [2],
            [5],
            [[-100, 9, 4, 9, -100]],
            " (the EOS id 9 inside the response, before its end: the response ends at seq_len, "
            "so mask by seq_lens, not at the first EOS)",
        ),
    ]
    for seqs, prompt_lens, seq_lens, want, about in cases:
        given = torch.tensor(seqs)
        got = response_labels(given, torch.tensor(prompt_lens), torch.tensor(seq_lens))
        assert isinstance(got, tuple) and len(got) == 2, "return a pair (inputs, labels)"
        x, y = got
        assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor), "return (inputs, labels) as tensors"
        assert given.tolist() == seqs, "seqs was changed in place; clone the targets before masking"
        case = f"for seqs {seqs}, prompt_lens {prompt_lens}, seq_lens {seq_lens} (EOS id {eos}){about}"
        assert x.tolist() == [s[:-1] for s in seqs], f"{case} the inputs should be seqs[:, :-1]"
        for labels, mistake in _wrong_labels(seqs, prompt_lens, seq_lens):
            if y.tolist() == labels.tolist() != want:
                raise AssertionError(f"{case} the labels are {y.tolist()}: {mistake}")
        assert y.tolist() == want, f"{case} the labels should be {want}, got {y.tolist()}"
        assert y.dtype == torch.int64, (
            f"the labels are {y.dtype}: cross_entropy takes class indices as int64 (torch.long), "
            "keep the dtype of seqs (fill with -100 rather than building a float or int32 tensor)"
        )


def _wrong_perplexities(batches):
    """(value, mistake) for the perplexities that the usual shortcuts give on these batches."""
    sums = [F.cross_entropy(lg.flatten(0, 1), lb.flatten(), reduction="sum").item() for lg, lb in batches]
    kept = [(lb != -100).sum().item() for _, lb in batches]
    rows = [len(lb) for _, lb in batches]
    means = [total / count for total, count in zip(sums, kept, strict=True) if count]  # the batches that keep something
    guarded = [
        total / max(count, 1) for total, count in zip(sums, kept, strict=True)
    ]  # notebook 04's guarded mean: 0 if empty
    row_means = [  # one mean per row that keeps something: the per-sequence mean of notebook 04
        F.cross_entropy(lg[r], lb[r]).item() for lg, lb in batches for r in range(len(lb)) if (lb[r] != -100).any()
    ]
    row_guarded = [  # every row's summed loss over its kept count clamped to 1: an empty row counts as 0
        F.cross_entropy(lg[r], lb[r], reduction="sum").item() / max((lb[r] != -100).sum().item(), 1)
        for lg, lb in batches
        for r in range(len(lb))
    ]
    keeps, has = ", ".join(map(str, kept)), ", ".join(map(str, rows))
    per_batch = f"an average of per-batch values; the batches keep {keeps} targets"
    by_rows = f"per-batch means weighted by the number of rows; the batches have {has} rows but keep {keeps} targets"
    weighted = [(m, n) for m, n, count in zip(guarded, rows, kept, strict=True) if count]
    return [
        (math.exp(sum(means) / len(means)), per_batch),
        (sum(math.exp(m) for m in means) / len(means), per_batch),
        (math.exp(sum(guarded) / len(guarded)), per_batch),
        (math.exp(sum(m * n for m, n in weighted) / sum(n for _, n in weighted)), by_rows + " (the empty one skipped)"),
        (math.exp(sum(m * n for m, n in zip(guarded, rows, strict=True)) / sum(rows)), by_rows),
        (
            sum(math.exp(m) * count for m, count in zip(guarded, kept, strict=True)) / sum(kept),
            "a mean of per-batch perplexities weighted by kept count: the weights are right, but take exp once, of "
            "the total loss over the total kept count",
        ),
        (math.exp(sum(row_means) / len(row_means)), "the mean of per-row means; each kept target should count once"),
        (
            math.exp(sum(row_guarded) / len(row_guarded)),
            "the mean of per-row means, the rows that keep nothing counted as 0; each kept target should count once",
        ),
        (
            math.exp(sum(sums) / sum(lb.numel() for _, lb in batches)),
            "divided by every position: count only labels != -100",
        ),
    ]


def _flattened(answer, *args):
    """answer(*args), with the error of (B, T, C) logits passed straight to cross_entropy named."""
    try:
        return answer(*args)
    except (RuntimeError, ValueError) as err:
        if "target size" not in str(err).lower():
            raise
        raise AssertionError(
            f"cross_entropy raised {str(err).splitlines()[0]}: it reads dim 1 of the logits as the classes; "
            "flatten the logits to (B*T, C) and the labels to (B*T,)"
        ) from None


def _check_perplexity(perplexity):
    gen = torch.Generator().manual_seed(5)
    keeps = [[[1, 1, 1], [1, 0, 0]], [[0, 0]], [[1, 1], [1, 1], [1, 0]]]  # 2, 1 and 3 rows keeping 4, 0 and 5 targets
    batches = []
    for keep in keeps:
        keep = torch.tensor(keep, dtype=torch.bool)
        logits = torch.randn(*keep.shape, 4, generator=gen) * 2
        batches.append((logits, torch.randint(0, 4, keep.shape, generator=gen).masked_fill(~keep, -100)))
    for chosen in (batches, batches[:1]):
        logits = torch.cat([lg.flatten(0, 1) for lg, _ in chosen])
        labels = torch.cat([lb.flatten() for _, lb in chosen])
        want = F.cross_entropy(logits, labels).exp().item()
        got = _flattened(perplexity, chosen)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        assert isinstance(got, numbers.Real), f"expected a float, got {type(got).__name__}"
        assert not math.isnan(got), "got nan: a batch that keeps nothing adds 0 to the loss and 0 to the count"
        for value, mistake in _wrong_perplexities(chosen) if len(chosen) > 1 else ():
            if math.isclose(got, value, rel_tol=1e-5):
                raise AssertionError(f"got {got:.4f}, {mistake}")
        assert not math.isclose(got, math.log(want), rel_tol=1e-5), f"got {got:.4f}, the mean loss: take its exp"
        assert math.isclose(got, want, rel_tol=1e-5), f"for {len(chosen)} batch(es) expected {want:.4f}, got {got:.4f}"


def _returned_loss(got):
    """The loss a train_step returned, as a Python number; a tensor still tied to the graph is refused."""
    if isinstance(got, torch.Tensor) and got.requires_grad:
        raise AssertionError(
            "train_step returned a tensor that still requires grad: return loss.item(), a float (a loop that adds "
            "up such tensors, running += train_step(...), keeps every step's graph alive)"
        )
    got = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
    assert isinstance(got, numbers.Real), f"return the loss as a float, got {type(got).__name__}"
    return got


def _wrong_losses(logits, labels):
    """(loss, mistake) for the normalisations that are not the token mean, on one batch."""
    losses = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")  # (B, T), 0 where ignored
    kept = (labels != -100).sum(1)
    token_mean = "the token mean divides the summed loss by the number of kept targets (labels != -100)"
    return [
        (losses.sum().item(), f"the summed loss, not divided: {token_mean}"),
        (losses.sum().item() / labels.numel(), f"divided by every position (labels.numel()): {token_mean}"),
        (losses.sum().item() / labels.shape[0], f"divided by the number of rows (labels.shape[0]): {token_mean}"),
        (
            (losses.sum(1) / kept.clamp(min=1)).mean().item(),
            f"the mean of per-row means, which weighs a row the same whatever it keeps: {token_mean}",
        ),
    ]


_GRAD_NONE = (
    "after the {name} .grad is None, not this batch's gradient: zero the gradients first, opt.zero_grad() "
    "before backward, not after the step"
)


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
        reached = []  # a backward that goes through the model reaches its weight: what DDP's hooks wait for
        handle = model.weight.register_hook(reached.append)
        try:
            got = _returned_loss(_flattened(train_step, model, opt, x, labels))
        finally:
            handle.remove()
        if labels is empty:
            assert not math.isnan(got), (
                "the loss of an all-ignored batch is nan: the mean over no kept targets is 0/0; divide the summed "
                "loss by kept.clamp(min=1)"
            )
            assert got == 0.0, f"the loss of an all-ignored batch should be 0.0, got {got}"
            assert torch.equal(model.weight, before), "the parameters changed on an all-ignored batch"
            assert reached, (
                "on the all-ignored batch no gradient reached the model's parameters: an early return, or a zero "
                "loss that is not computed from model(x) (torch.zeros(..., requires_grad=True), a detached 0). "
                "Compute the loss from model(x) and call backward on every batch, no early return: under DDP "
                "(notebook 07 section 3) that backward is what joins this rank to the step's all-reduce"
            )
            assert all(grad.isfinite().all() for grad in reached), (
                "the all-ignored batch's gradient is nan: losses masked by a multiplication (not by ignore_index) "
                "and divided by a kept count of 0 give 0/0 in the backward pass too (an AdamW step on it would turn "
                "every weight nan; under DDP the nan reaches every rank). Divide by kept.clamp(min=1)"
            )
            assert model.weight.grad is not None, _GRAD_NONE.format(name=name)
            assert not model.weight.grad.any(), (
                "after the all-ignored batch .grad still holds an earlier batch's gradient: call opt.zero_grad() "
                "before backward, and run both on every batch (no early return), so that .grad is this batch's, "
                "zero here"
            )
            continue
        want = F.cross_entropy(reference(x).flatten(0, 1), full.flatten())
        for value, mistake in _wrong_losses(reference(x).detach(), full):
            if math.isclose(got, value, rel_tol=1e-5) and not math.isclose(got, want.item(), rel_tol=1e-5):
                raise AssertionError(f"{name}: loss {got:.4f}, {mistake}; expected {want.item():.4f}")
        reference_opt.zero_grad()
        want.backward()
        reference_opt.step()
        assert math.isclose(got, want.item(), rel_tol=1e-5), f"{name}: loss {got:.4f}, expected {want.item():.4f}"
        extra = " (zero the gradients first; no step on the all-ignored batch)" if name == "third batch" else ""
        assert torch.allclose(model.weight, reference.weight, atol=1e-6), (
            f"{name}: the parameters differ from one AdamW step on the token-mean loss{extra}"
        )
        assert model.weight.grad is not None, _GRAD_NONE.format(name=name)
        assert model.weight.grad.any(), (
            f"after the {name} .grad is all zeros, not this batch's gradient: opt.zero_grad(set_to_none=False) "
            "after the step wipes it; zero the gradients first, opt.zero_grad() before backward, not after the step"
        )
        assert torch.allclose(model.weight.grad, reference.weight.grad, atol=1e-6), (
            f"after the {name} .grad is not the gradient of this batch's token-mean loss: call opt.zero_grad() "
            "before backward, then backward once"
        )
    # A batch that keeps 2 targets, both predicted with certainty: its loss is exactly 0.0, and it still gets a step.
    model = torch.nn.Embedding(5, 5)
    with torch.no_grad():
        model.weight.copy_(200 * torch.eye(5))  # logit 200 for the right token, 0 for the others: exp(-200) is 0.0
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    got = _returned_loss(train_step(model, opt, torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, -100]])))
    assert got == 0.0, f"a batch predicted with certainty: loss {got}, expected 0.0"
    assert not torch.equal(model.weight, 200 * torch.eye(5)), (
        "a batch that keeps 2 targets but has loss 0.0 got no opt.step() (AdamW's weight decay would have moved "
        "the weights): decide on the kept count, labels != -100, not on the loss value"
    )


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "05-response-labels": (
        _check_response_labels,
        "target t is token t + 1: keep t from prompt_len - 1 to seq_len - 2; mask by length, not by value",
    ),
    "05-perplexity": (
        _check_perplexity,
        "sum the losses (reduction='sum') and the kept counts over all batches, divide once",
    ),
    "05-skip-empty-step": (
        _check_skip_empty_step,
        "divide the summed loss by kept.clamp(min=1); call opt.step() only if kept > 0",
    ),
}
