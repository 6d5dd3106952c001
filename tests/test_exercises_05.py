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


def test_05_skip_empty_step_accepts_zero_grad_after_the_step():
    def zero_after(model, opt, x, labels):  # the gradients are zero (None) before every backward here too
        loss, kept = _loss_and_kept(model, x, labels)
        loss.backward()
        if kept > 0:
            opt.step()
        opt.zero_grad()
        return loss.item()

    passed, message = run_check("05-skip-empty-step", zero_after)
    assert passed, message


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
