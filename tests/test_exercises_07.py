"""Notebook 07's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import torch
import torch.nn.functional as F

from course.exercises import run_check


def _z_parts(logits, targets):
    kept = targets != -100
    return kept, F.cross_entropy(logits, targets, reduction="sum")


def test_07_loss_with_z_names_olmos_mean_over_every_row():
    def olmo(logits, targets, num_items, z_weight=1e-4):
        kept, ce = _z_parts(logits, targets)
        return ce / num_items.clamp(min=1) + z_weight * (logits.logsumexp(dim=-1).pow(2) * kept).mean()

    passed, message = run_check("07-loss-with-z", olmo)
    assert not passed and "per micro-batch" in message


def test_07_loss_with_z_says_why_a_row_of_finfo_min_gives_nan():
    def multiply_by_mask(logits, targets, num_items, z_weight=1e-4):
        kept, ce = _z_parts(logits, targets)
        return (ce + z_weight * (logits.logsumexp(dim=-1).pow(2) * kept).sum()) / num_items.clamp(min=1)

    passed, message = run_check("07-loss-with-z", multiply_by_mask)
    assert not passed and "select the kept rows before logsumexp" in message


def test_07_chunked_eval_loss_wants_no_gradient_graph():
    def with_graph(hidden, weight, targets, chunk_size):
        mask = targets != -100
        total = sum(
            F.cross_entropy(h @ weight.T, y, reduction="sum")
            for h, y in zip(hidden[mask].split(chunk_size), targets[mask].split(chunk_size), strict=True)
        )
        return torch.as_tensor(total) / mask.sum().clamp(min=1)

    passed, message = run_check("07-chunked-eval-loss", with_graph)
    assert not passed and "torch.no_grad()" in message


def test_07_rank_loss_catches_clamping_the_count_per_rank():
    # (K / W).clamp(min=1) is right whenever K >= W; with fewer kept targets than ranks it lifts K / W to 1.
    def clamp_per_rank(logits, targets, global_count, world_size):
        summed = F.cross_entropy(logits, targets, reduction="sum")
        return summed / (global_count / world_size).clamp(min=1)

    passed, message = run_check("07-rank-loss", clamp_per_rank)
    assert not passed and "K/W = 1/2" in message and "clamp the count itself" in message


def test_07_rank_loss_passes_the_solution():
    def rank_loss(logits, targets, global_count, world_size):
        return F.cross_entropy(logits, targets, reduction="sum") * world_size / global_count.clamp(min=1)

    passed, message = run_check("07-rank-loss", rank_loss)
    assert passed, message


def _chunked(project):
    """A right chunked evaluation loss whose logits come from project(h, weight)."""

    def chunked_eval_loss(hidden, weight, targets, chunk_size):
        mask = targets != -100
        total = torch.zeros(())
        with torch.no_grad():
            for h, y in zip(hidden[mask].split(chunk_size), targets[mask].split(chunk_size), strict=True):
                total += F.cross_entropy(project(h, weight), y, reduction="sum")
        return total / mask.sum().clamp(min=1)

    return chunked_eval_loss


def test_07_chunked_eval_loss_accepts_logits_computed_transposed():
    passed, message = run_check("07-chunked-eval-loss", _chunked(lambda h, w: (w @ h.T).T))
    assert passed, message


def test_07_chunked_eval_loss_accepts_logits_computed_with_tensordot():
    passed, message = run_check("07-chunked-eval-loss", _chunked(lambda h, w: torch.tensordot(h, w, dims=([1], [1]))))
    assert passed, message


def test_07_chunked_eval_loss_catches_projecting_every_row():
    def every_row(hidden, weight, targets, chunk_size):
        with torch.no_grad():
            total = sum(
                F.cross_entropy(h @ weight.T, y, reduction="sum")
                for h, y in zip(hidden.split(chunk_size), targets.split(chunk_size), strict=True)
            )
        return torch.as_tensor(total) / (targets != -100).sum().clamp(min=1)

    passed, message = run_check("07-chunked-eval-loss", every_row)
    assert not passed and "select them first" in message


def test_07_loss_with_z_names_the_nan_gradient_of_torch_where():
    # The natural fix of the mask-multiply slip: the loss is finite, its gradient is not.
    def with_where(logits, targets, num_items, z_weight=1e-4):
        kept, ce = _z_parts(logits, targets)
        z2 = torch.where(kept, logits.logsumexp(dim=-1).pow(2), 0)
        return (ce + z_weight * z2.sum()) / num_items.clamp(min=1)

    passed, message = run_check("07-loss-with-z", with_where)
    assert not passed and "gradient holds nan" in message and "torch.where" in message


def test_07_rank_loss_catches_a_detached_zero_on_an_empty_rank():
    # Numerically harmless, but no DDP hook fires on that rank, so it joins no all-reduce (section 3).
    def detached_zero(logits, targets, global_count, world_size):
        if not (targets != -100).any():
            return torch.zeros((), requires_grad=True)
        return F.cross_entropy(logits, targets, reduction="sum") * world_size / global_count.clamp(min=1)

    passed, message = run_check("07-rank-loss", detached_zero)
    assert not passed and "does not go through the logits" in message and "section 3" in message


def test_07_loss_with_z_names_the_local_denominator():
    def local_z_mean(logits, targets, num_items, z_weight=1e-4):
        kept, ce = _z_parts(logits, targets)
        z2 = logits[kept].logsumexp(dim=-1).pow(2).sum() / kept.sum().clamp(min=1)
        return ce / num_items.clamp(min=1) + z_weight * z2

    passed, message = run_check("07-loss-with-z", local_z_mean)
    assert not passed and "own kept count" in message and "num_items" in message


def test_07_chunked_eval_loss_catches_gradients_on_then_detach():
    # The value is right and the result carries no graph, but until the return every chunk's log-probabilities
    # were kept for a backward pass: the memory the exercise exists to avoid.
    def detached_at_the_end(hidden, weight, targets, chunk_size):
        mask = targets != -100
        total = torch.zeros(())
        for h, y in zip(hidden[mask].split(chunk_size), targets[mask].split(chunk_size), strict=True):
            total = total + F.cross_entropy(h @ weight.T, y, reduction="sum")
        return (total / mask.sum().clamp(min=1)).detach()

    passed, message = run_check("07-chunked-eval-loss", detached_at_the_end)
    assert not passed and "gradients on" in message and "torch.no_grad()" in message


def test_07_chunked_eval_loss_accepts_logits_computed_with_inner():
    passed, message = run_check("07-chunked-eval-loss", _chunked(torch.inner))
    assert passed, message


def test_07_chunked_eval_loss_accepts_detached_inputs_with_gradients_on():
    # Nothing requires a gradient, so autograd keeps nothing: as good as torch.no_grad().
    def detached_inputs(hidden, weight, targets, chunk_size):
        mask = targets != -100
        hidden, weight = hidden.detach(), weight.detach()
        total = sum(
            F.cross_entropy(h @ weight.T, y, reduction="sum")
            for h, y in zip(hidden[mask].split(chunk_size), targets[mask].split(chunk_size), strict=True)
        )
        return torch.as_tensor(total, dtype=torch.float32) / mask.sum().clamp(min=1)

    passed, message = run_check("07-chunked-eval-loss", detached_inputs)
    assert passed, message


def test_07_chunked_eval_loss_catches_chunks_put_back_together():
    # Each projection covers a chunk, but torch.cat rebuilds all kept rows x vocabulary before one loss.
    def concatenated_logits(hidden, weight, targets, chunk_size):
        mask = targets != -100
        with torch.no_grad():
            logits = torch.cat([h @ weight.T for h in hidden[mask].split(chunk_size)])
            return F.cross_entropy(logits, targets[mask], reduction="sum") / mask.sum().clamp(min=1)

    def concatenated_log_probs(hidden, weight, targets, chunk_size):
        mask = targets != -100
        with torch.no_grad():
            log_probs = torch.cat([(h @ weight.T).log_softmax(dim=-1) for h in hidden[mask].split(chunk_size)])
            return -log_probs.gather(1, targets[mask][:, None]).sum() / mask.sum().clamp(min=1)

    for answer in (concatenated_logits, concatenated_log_probs):
        passed, message = run_check("07-chunked-eval-loss", answer)
        assert not passed and "rows x the vocabulary was built" in message and "torch.cat" in message


def test_07_chunked_eval_loss_names_the_mean_of_chunk_means():
    def mean_of_means(hidden, weight, targets, chunk_size):
        mask = targets != -100
        with torch.no_grad():
            means = [
                F.cross_entropy(h @ weight.T, y)
                for h, y in zip(hidden[mask].split(chunk_size), targets[mask].split(chunk_size), strict=True)
            ]
        return torch.stack(means).mean() if mask.any() else torch.zeros(())

    passed, message = run_check("07-chunked-eval-loss", mean_of_means)
    assert not passed and "the mean of the chunks' means" in message and "[3, 3, 1]" in message


def test_07_chunked_eval_loss_explains_the_nan_of_an_empty_chunk_mean():
    # Each chunk's mean times its length is right when something is kept; with nothing kept, the empty tensor
    # splits into one empty chunk, whose 'mean' is nan, and nan x 0 is nan.
    def mean_times_length(hidden, weight, targets, chunk_size):
        mask = targets != -100
        total = torch.zeros(())
        with torch.no_grad():
            for h, y in zip(hidden[mask].split(chunk_size), targets[mask].split(chunk_size), strict=True):
                total += F.cross_entropy(h @ weight.T, y) * len(y)
        return total / mask.sum().clamp(min=1)

    passed, message = run_check("07-chunked-eval-loss", mean_times_length)
    assert not passed and "one empty chunk" in message and "reduction='sum'" in message


def test_07_chunked_eval_loss_accepts_a_transposed_weight_and_one_hot_targets_per_chunk():
    def one_hot_per_chunk(hidden, weight, targets, chunk_size):
        mask = targets != -100
        total, weight_t = torch.zeros(()), weight.T  # (hidden size) x vocabulary, no larger than a chunk here
        with torch.no_grad():
            for h, y in zip(hidden[mask].split(chunk_size), targets[mask].split(chunk_size), strict=True):
                total -= (F.one_hot(y, weight.shape[0]) * (h @ weight_t).log_softmax(dim=-1)).sum()
        return total / mask.sum().clamp(min=1)

    passed, message = run_check("07-chunked-eval-loss", one_hot_per_chunk)
    assert passed, message


def test_07_rank_loss_names_each_ranks_own_mean():
    # Each rank's own token mean (guarded), with or without x world size: DDP averages per-rank means.
    def own_mean(logits, targets, global_count, world_size):
        return torch.nan_to_num(F.cross_entropy(logits, targets))

    def own_mean_times_w(logits, targets, global_count, world_size):
        return own_mean(logits, targets, global_count, world_size) * world_size

    for answer, times in ((own_mean, ""), (own_mean_times_w, ", times world_size")):
        passed, message = run_check("07-rank-loss", answer)
        assert not passed and f"the table's `own mean`{times})" in message, message
        assert "multiply by world_size" in message, message
