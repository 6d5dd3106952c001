"""Notebook 05's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course.exercises import run_check


def _perplexity_parts(batches):
    total = sum(F.cross_entropy(lg.flatten(0, 1), lb.flatten(), reduction="sum") for lg, lb in batches)
    kept = sum((lb != -100).sum() for _, lb in batches)
    return total, kept


def test_05_perplexity_says_the_exp_is_missing():
    passed, message = run_check("05-perplexity", lambda b: (lambda t, k: (t / k).item())(*_perplexity_parts(b)))
    assert not passed and "take its exp" in message


def test_05_perplexity_names_the_mean_of_guarded_batch_means():
    def guarded_means(batches):
        means = [_perplexity_parts([b])[0] / _perplexity_parts([b])[1].clamp(min=1) for b in batches]
        return math.exp(sum(means).item() / len(means))

    passed, message = run_check("05-perplexity", guarded_means)
    assert not passed and "an average of per-batch values" in message


def _batch_means(batches):
    """(rows, mean loss or nan, kept count) of each batch: what a per-batch evaluation loop has."""
    return [
        (len(lb), F.cross_entropy(lg.flatten(0, 1), lb.flatten()).item(), (lb != -100).sum().item())
        for lg, lb in batches
    ]


def test_05_perplexity_names_batch_means_weighted_by_rows():
    def by_rows(batches):  # the usual `total += loss.item() * len(x)`, with the nan of an empty batch skipped
        parts = [(rows, mean) for rows, mean, kept in _batch_means(batches) if kept]
        return math.exp(sum(rows * mean for rows, mean in parts) / sum(rows for rows, _ in parts))

    passed, message = run_check("05-perplexity", by_rows)
    assert not passed and "weighted by the number of rows" in message and "the empty one skipped" in message


def test_05_perplexity_names_batch_means_weighted_by_rows_with_empty_batches_as_zero():
    def by_rows(batches):
        parts = [(rows, mean if kept else 0.0) for rows, mean, kept in _batch_means(batches)]
        return math.exp(sum(rows * mean for rows, mean in parts) / sum(rows for rows, _ in parts))

    passed, message = run_check("05-perplexity", by_rows)
    assert not passed and "weighted by the number of rows" in message


def test_05_perplexity_says_the_nan_of_an_empty_batch_mean_spread_into_the_total():
    def by_rows(batches):
        parts = _batch_means(batches)
        return math.exp(sum(rows * mean for rows, mean, _ in parts) / sum(rows for rows, _, _ in parts))

    passed, message = run_check("05-perplexity", by_rows)
    assert not passed and "got nan" in message


def test_05_perplexity_names_the_mean_of_batch_means_that_skips_empty_batches():
    def skip_empty(batches):
        means = [mean for _, mean, kept in _batch_means(batches) if kept]
        return math.exp(sum(means) / len(means))

    passed, message = run_check("05-perplexity", skip_empty)
    assert not passed and "an average of per-batch values" in message


def test_05_perplexity_names_the_mean_of_per_row_means():
    def per_row(batches):
        rows = [(lg[r], lb[r]) for lg, lb in batches for r in range(len(lb)) if (lb[r] != -100).any()]
        return math.exp(sum(F.cross_entropy(lg, lb).item() for lg, lb in rows) / len(rows))

    passed, message = run_check("05-perplexity", per_row)
    assert not passed and "the mean of per-row means" in message


def test_05_perplexity_names_a_count_of_every_position():
    passed, message = run_check(
        "05-perplexity", lambda b: math.exp(_perplexity_parts(b)[0].item() / sum(lb.numel() for _, lb in b))
    )
    assert not passed and "count only labels != -100" in message


def test_05_perplexity_accepts_the_totals_as_a_tensor():
    passed, message = run_check("05-perplexity", lambda b: (lambda t, k: (t / k).exp())(*_perplexity_parts(b)))
    assert passed, message


def _response_labels(seqs, prompt_lens, seq_lens):
    """The notebook's solution: mask by length."""
    x, y = seqs[:, :-1], seqs[:, 1:].clone()
    t = torch.arange(y.shape[1])
    keep = (t >= prompt_lens[:, None] - 1) & (t < seq_lens[:, None] - 1)
    return x, y.masked_fill(~keep, -100)


@pytest.mark.parametrize("dtype", [torch.int32, torch.float32])
def test_05_response_labels_names_labels_that_are_not_int64(dtype):
    def converted(seqs, prompt_lens, seq_lens):
        x, y = _response_labels(seqs, prompt_lens, seq_lens)
        return x, y.to(dtype)

    passed, message = run_check("05-response-labels", converted)
    assert not passed and f"the labels are {dtype}" in message and "int64" in message


def test_05_response_labels_names_a_search_for_the_first_eos_after_the_prompt():
    def first_eos(seqs, prompt_lens, seq_lens):  # seq_lens unused: the EOS id read off the padding
        x, y = seqs[:, :-1], seqs[:, 1:].clone()
        t = torch.arange(y.shape[1])
        after_prompt = t >= prompt_lens[:, None] - 1
        is_eos = (y == seqs[:, -1:]) & after_prompt
        ends = torch.where(is_eos.any(1), is_eos.int().argmax(1), y.shape[1] - 1)  # the first EOS target
        return x, y.masked_fill(~after_prompt | (t > ends[:, None]), -100)

    passed, message = run_check("05-response-labels", first_eos)
    assert not passed and "mask by seq_lens, not at the first EOS" in message


def test_05_response_labels_accepts_the_solution_written_with_where():
    def with_where(seqs, prompt_lens, seq_lens):
        t = torch.arange(seqs.shape[1] - 1)
        keep = (t >= prompt_lens[:, None] - 1) & (t < seq_lens[:, None] - 1)
        return seqs[:, :-1], torch.where(keep, seqs[:, 1:], -100)

    passed, message = run_check("05-response-labels", with_where)
    assert passed, message


def test_05_perplexity_says_to_flatten_logits_passed_as_b_t_c():
    def unflattened(batches):  # (B, T, C) logits: cross_entropy reads T as the classes and raises
        total = sum(F.cross_entropy(lg, lb, reduction="sum").item() for lg, lb in batches)
        return math.exp(total / sum((lb != -100).sum().item() for _, lb in batches))

    passed, message = run_check("05-perplexity", unflattened)
    assert not passed and "flatten the logits to (B*T, C) and the labels to (B*T,)" in message


def _loss_and_kept(model, x, labels):
    kept = (labels != -100).sum()
    loss = F.cross_entropy(model(x).flatten(0, 1), labels.flatten(), reduction="sum") / kept.clamp(min=1)
    return loss, kept


def test_05_skip_empty_step_names_an_early_return_that_leaves_stale_gradients():
    def early_return(model, opt, x, labels):
        if (labels != -100).sum() == 0:
            return 0.0  # before zero_grad: .grad still holds the previous batch's gradient
        loss, _ = _loss_and_kept(model, x, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    passed, message = run_check("05-skip-empty-step", early_return)
    assert not passed and "no early return" in message


def test_05_skip_empty_step_names_a_step_decided_on_the_loss_value():
    def on_loss(model, opt, x, labels):
        loss, _ = _loss_and_kept(model, x, labels)
        opt.zero_grad()
        loss.backward()
        if loss.item() != 0:  # a heuristic: a kept batch can have loss 0.0
            opt.step()
        return loss.item()

    passed, message = run_check("05-skip-empty-step", on_loss)
    assert not passed and "decide on the kept count" in message


def test_05_skip_empty_step_names_zero_grad_after_the_step():
    def zero_after(model, opt, x, labels):  # sound as a loop, but .grad is None afterwards, not this batch's
        loss, kept = _loss_and_kept(model, x, labels)
        loss.backward()
        if kept > 0:
            opt.step()
        opt.zero_grad()
        return loss.item()

    passed, message = run_check("05-skip-empty-step", zero_after)
    assert not passed and ".grad is None" in message and "before backward, not after the step" in message


def test_05_skip_empty_step_names_zero_grad_after_the_step_that_keeps_zeros():
    def zero_after(model, opt, x, labels):  # sound as a loop, but .grad is all zeros afterwards, not this batch's
        loss, kept = _loss_and_kept(model, x, labels)
        loss.backward()
        if kept > 0:
            opt.step()
        opt.zero_grad(set_to_none=False)
        return loss.item()

    passed, message = run_check("05-skip-empty-step", zero_after)
    assert not passed and ".grad is all zeros" in message and "set_to_none=False" in message


def test_05_skip_empty_step_says_to_flatten_logits_passed_as_b_t_c():
    def unflattened(model, opt, x, labels):
        kept = (labels != -100).sum()
        loss = F.cross_entropy(model(x), labels, reduction="sum") / kept.clamp(min=1)
        opt.zero_grad()
        loss.backward()
        if kept > 0:
            opt.step()
        return loss.item()

    passed, message = run_check("05-skip-empty-step", unflattened)
    assert not passed and "flatten the logits to (B*T, C)" in message


def test_05_skip_empty_step_names_an_early_return_after_zero_grad():
    def early_return(model, opt, x, labels):  # .grad is None afterwards: no stale gradient, but no backward either
        opt.zero_grad()
        if (labels != -100).sum() == 0:
            return 0.0
        loss, _ = _loss_and_kept(model, x, labels)
        loss.backward()
        opt.step()
        return loss.item()

    passed, message = run_check("05-skip-empty-step", early_return)
    assert not passed and "no gradient reached the model's parameters" in message and "all-reduce" in message


def test_05_skip_empty_step_names_a_detached_zero_loss():
    def detached_zero(model, opt, x, labels):  # backward runs, but not through the model: DDP's hooks never fire
        loss, kept = _loss_and_kept(model, x, labels)
        if kept == 0:
            loss = torch.zeros((), requires_grad=True)
        opt.zero_grad()
        loss.backward()
        if kept > 0:
            opt.step()
        return loss.item()

    passed, message = run_check("05-skip-empty-step", detached_zero)
    assert not passed and "not computed from model(x)" in message and "07" in message


def test_05_skip_empty_step_names_the_nan_gradient_of_an_unclamped_count():
    def unclamped(model, opt, x, labels):  # a loss mask over valid ids, divided by mask.sum(): 0/0 when it is 0
        mask = labels != -100
        losses = F.cross_entropy(model(x).flatten(0, 1), labels.clamp(min=0).flatten(), reduction="none")
        loss = (losses * mask.flatten()).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        if mask.any():
            opt.step()
        return loss.item() if mask.any() else 0.0

    passed, message = run_check("05-skip-empty-step", unclamped)
    assert not passed and "gradient is nan" in message and "kept.clamp(min=1)" in message


def test_05_skip_empty_step_names_a_returned_loss_that_still_holds_the_graph():
    def graph(model, opt, x, labels):
        loss, kept = _loss_and_kept(model, x, labels)
        opt.zero_grad()
        loss.backward()
        if kept > 0:
            opt.step()
        return loss

    passed, message = run_check("05-skip-empty-step", graph)
    assert not passed and "return loss.item()" in message


def test_05_skip_empty_step_accepts_the_mean_loss_with_its_nan_replaced_by_zero():
    def mean_loss(model, opt, x, labels):  # the mean over no kept targets is nan, but its gradient is zero
        kept = (labels != -100).sum()
        loss = F.cross_entropy(model(x).flatten(0, 1), labels.flatten())
        opt.zero_grad()
        loss.backward()
        if kept > 0:
            opt.step()
        return loss.item() if kept > 0 else 0.0

    passed, message = run_check("05-skip-empty-step", mean_loss)
    assert passed, message


def test_05_skip_empty_step_accepts_a_zero_loss_taken_from_the_model_output():
    def through_the_model(model, opt, x, labels):
        logits = model(x)
        kept = (labels != -100).sum()
        if kept > 0:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        else:
            loss = logits.sum() * 0.0  # a zero that still goes through the model: DDP's hooks fire
        opt.zero_grad()
        loss.backward()
        if kept > 0:
            opt.step()
        return loss.item()

    passed, message = run_check("05-skip-empty-step", through_the_model)
    assert passed, message


def test_05_skip_empty_step_accepts_a_returned_loss_detached_from_the_graph():
    def detached(model, opt, x, labels):
        loss, kept = _loss_and_kept(model, x, labels)
        opt.zero_grad()
        loss.backward()
        if kept > 0:
            opt.step()
        return loss.detach()

    passed, message = run_check("05-skip-empty-step", detached)
    assert passed, message


def _response_labels_kept(low, high):
    """Labels that keep the targets t with prompt_len + low <= t < seq_len + high: the solution is (-1, -1)."""

    def labels(seqs, prompt_lens, seq_lens):
        x, y = seqs[:, :-1], seqs[:, 1:].clone()
        t = torch.arange(y.shape[1])
        keep = (t >= prompt_lens[:, None] + low) & (t < seq_lens[:, None] + high)
        return x, y.masked_fill(~keep, -100)

    return labels


@pytest.mark.parametrize(
    ("low", "high", "named"),
    [
        (0, -1, "the first response token is masked"),  # t >= prompt_len
        (-1, -2, "the final EOS is masked"),  # t < seq_len - 2
        (-1, 0, "one padding target after the EOS is kept"),  # t < seq_len
        (-2, -1, "the last prompt token is kept as a target"),  # t >= prompt_len - 2
    ],
)
def test_05_response_labels_names_a_range_one_position_off(low, high, named):
    passed, message = run_check("05-response-labels", _response_labels_kept(low, high))
    assert not passed and named in message and "target t is token t + 1" in message


def test_05_response_labels_names_the_final_eos_lost_to_a_mask_by_value():
    def by_value(seqs, prompt_lens, seq_lens):
        x, y = _response_labels(seqs, prompt_lens, seq_lens)
        return x, y.masked_fill(y == seqs[0, -1], -100)  # the EOS id, read off the padding

    passed, message = run_check("05-response-labels", by_value)
    assert not passed and "the final EOS is masked (a mask by value" in message


def test_05_response_labels_names_a_prompt_left_in_the_targets():
    def prompt_kept(seqs, prompt_lens, seq_lens):
        x, y = seqs[:, :-1], seqs[:, 1:].clone()
        return x, y.masked_fill(torch.arange(y.shape[1]) >= seq_lens[:, None] - 1, -100)

    passed, message = run_check("05-response-labels", prompt_kept)
    assert not passed and "the prompt's targets are kept" in message


def test_05_perplexity_names_batch_perplexities_weighted_by_kept_count():
    def weighted(batches):
        parts = [(math.exp(mean), kept) for _, mean, kept in _batch_means(batches) if kept]
        return sum(p * kept for p, kept in parts) / sum(kept for _, kept in parts)

    passed, message = run_check("05-perplexity", weighted)
    assert not passed and "per-batch perplexities weighted by kept count" in message and "take exp once" in message


def test_05_perplexity_names_per_row_means_that_count_empty_rows_as_zero():
    def per_row(batches):
        means = [
            F.cross_entropy(lg[r], lb[r], reduction="sum") / (lb[r] != -100).sum().clamp(min=1)
            for lg, lb in batches
            for r in range(len(lb))
        ]
        return math.exp(sum(means).item() / len(means))

    passed, message = run_check("05-perplexity", per_row)
    assert not passed and "the rows that keep nothing counted as 0" in message


def _step_with_loss(normalised):
    """A train_step right in everything but the loss: normalised(per-token losses (B, T), labels)."""

    def train_step(model, opt, x, labels):
        losses = F.cross_entropy(model(x).transpose(1, 2), labels, reduction="none")  # 0 where ignored
        loss = normalised(losses, labels)
        opt.zero_grad()
        loss.backward()
        if (labels != -100).any():
            opt.step()
        return loss.item()

    return train_step


@pytest.mark.parametrize(
    ("normalised", "named"),
    [
        (lambda losses, labels: losses.sum(), "the summed loss, not divided"),
        (lambda losses, labels: losses.sum() / labels.numel(), "divided by every position (labels.numel())"),
        (lambda losses, labels: losses.sum() / labels.shape[0], "divided by the number of rows (labels.shape[0])"),
        (
            lambda losses, labels: (losses.sum(1) / (labels != -100).sum(1).clamp(min=1)).mean(),
            "the mean of per-row means",
        ),
    ],
    ids=["sum", "numel", "rows", "per-row"],
)
def test_05_skip_empty_step_names_a_loss_that_is_not_the_token_mean(normalised, named):
    passed, message = run_check("05-skip-empty-step", _step_with_loss(normalised))
    assert not passed and named in message and "number of kept targets (labels != -100)" in message


def test_05_skip_empty_step_accepts_the_token_mean_from_per_token_losses():
    token_mean = _step_with_loss(lambda losses, labels: losses.sum() / (labels != -100).sum().clamp(min=1))
    passed, message = run_check("05-skip-empty-step", token_mean)
    assert passed, message
