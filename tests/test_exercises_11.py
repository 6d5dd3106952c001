"""Notebook 11's exercise checkers: the solution passes, the starter and the classic wrong answers fail, and the
message names the mistake."""

import torch
import torch.nn.functional as F

from course.exercises import run_check


def check(name, answer):
    """The front door's verdict: None when the answer passes, else the message it prints."""
    passed, message = run_check(name, answer)
    return None if passed else message


# 11-mesh-loss-scale


def mesh_solution(kept, divide_factor):
    return divide_factor / kept[:, :, 0].sum().clamp(min=1)


def test_mesh_loss_scale_passes_the_solution():
    assert check("11-mesh-loss-scale", mesh_solution) is None


def test_mesh_loss_scale_names_counting_the_tensor_parallel_copies():
    message = check("11-mesh-loss-scale", lambda kept, factor: factor / kept.sum().clamp(min=1))
    assert "summed over the tensor-parallel ranks too" in message


def test_mesh_loss_scale_names_a_count_per_data_parallel_replica():
    # Megatron's per-replica count: K summed over CP only
    message = check("11-mesh-loss-scale", lambda kept, factor: factor / kept[:, :, :1].sum(dim=1, keepdim=True))
    assert "mean of the replicas' means" in message


def test_mesh_loss_scale_names_a_missing_divide_factor():
    message = check("11-mesh-loss-scale", lambda kept, factor: 1 / kept[:, :, 0].sum().clamp(min=1))
    assert "misses the framework's divide factor" in message


def test_mesh_loss_scale_wants_a_guarded_count():
    message = check("11-mesh-loss-scale", lambda kept, factor: factor / kept[:, :, 0].sum())
    assert "clamp(min=1)" in message


# 11-pipeline-loss


def summed_over(output, target, K):
    return F.cross_entropy(output.flatten(0, -2), target.flatten(), reduction="sum") / K.clamp(min=1)


def mean_loss(output, target):
    return F.cross_entropy(output.flatten(0, -2), target.flatten())


def test_pipeline_loss_passes_the_solution():
    def pipeline_setup(step_targets):
        count = sum((targets != -100).sum() for targets in step_targets)
        return summed_over, {"K": count}, False

    assert check("11-pipeline-loss", pipeline_setup) is None


def test_pipeline_loss_names_the_mean_of_micro_batch_means():
    message = check("11-pipeline-loss", lambda step_targets: (mean_loss, {}, True))
    assert "mean of micro-batch means" in message


def test_pipeline_loss_names_scale_grads_true():
    message = check(
        "11-pipeline-loss",
        lambda step_targets: (summed_over, {"K": sum((t != -100).sum() for t in step_targets)}, True),
    )
    assert "scale_grads=True divides" in message


def test_pipeline_loss_names_a_count_of_the_first_step_only():
    message = check(
        "11-pipeline-loss", lambda step_targets: (summed_over, {"K": (step_targets[0] != -100).sum()}, False)
    )
    assert "only the first step()" in message


# 11-vocab-parallel-ignore


def _rows(ctx, local_logits, target, vocab_start, all_reduce, mask_loss, mask_grad):
    """Megatron's algorithm; the rows whose target is -100 zeroed in the loss and/or in the gradient."""
    logits = local_logits.detach().clone()
    row_max = logits.max(dim=-1).values
    all_reduce(row_max, "max")
    logits -= row_max[:, None]
    elsewhere = (target < vocab_start) | (target >= vocab_start + logits.shape[-1])
    local_target = (target - vocab_start).masked_fill(elsewhere, 0)
    predicted = logits.gather(1, local_target[:, None]).squeeze(1).masked_fill(elsewhere, 0.0)
    all_reduce(predicted, "sum")
    exp = logits.exp()
    sum_exp = exp.sum(dim=-1)
    all_reduce(sum_exp, "sum")
    kept = target != -100
    ctx.save_for_backward(exp / sum_exp[:, None], elsewhere, local_target, kept if mask_grad else torch.ones_like(kept))
    rows = sum_exp.log() - predicted
    return (rows * kept if mask_loss else rows).sum()


def _backward(ctx, grad_sum):
    softmax, elsewhere, local_target, kept = ctx.saved_tensors
    grad = softmax.clone()
    grad[torch.arange(len(grad)), local_target] -= (~elsewhere).to(grad.dtype)
    return grad * kept[:, None] * grad_sum, None, None, None


class Masked(torch.autograd.Function):
    """The solution: rows whose target is -100 zeroed in forward and backward."""

    @staticmethod
    def forward(ctx, local_logits, target, vocab_start, all_reduce):
        return _rows(ctx, local_logits, target, vocab_start, all_reduce, True, True)

    backward = staticmethod(_backward)


class UnmaskedSum(torch.autograd.Function):
    """Megatron's rows, summed: the -100 rows add logsumexp - max."""

    @staticmethod
    def forward(ctx, local_logits, target, vocab_start, all_reduce):
        return _rows(ctx, local_logits, target, vocab_start, all_reduce, False, False)

    backward = staticmethod(_backward)


class MaskedLossOnly(torch.autograd.Function):
    """Zeroes the ignored rows' loss, not their gradient."""

    @staticmethod
    def forward(ctx, local_logits, target, vocab_start, all_reduce):
        return _rows(ctx, local_logits, target, vocab_start, all_reduce, True, False)

    backward = staticmethod(_backward)


def test_vocab_parallel_ignore_passes_the_solution():
    assert check("11-vocab-parallel-ignore", Masked) is None


def test_vocab_parallel_ignore_names_the_ignored_rows_in_the_sum():
    assert "rows whose target is -100, logsumexp − max" in check("11-vocab-parallel-ignore", UnmaskedSum)


def test_vocab_parallel_ignore_names_the_gradient_left_on_ignored_rows():
    assert "still get a gradient" in check("11-vocab-parallel-ignore", MaskedLossOnly)


def test_vocab_parallel_ignore_says_when_ranks_disagree_on_collectives():
    class OnlyRankZeroReduces(Masked):
        @staticmethod
        def forward(ctx, local_logits, target, vocab_start, all_reduce):
            if vocab_start == 0:
                all_reduce(local_logits.detach().max(dim=-1).values, "max")
            return Masked.forward(ctx, local_logits, target, vocab_start, all_reduce)

    assert "different number of times" in check("11-vocab-parallel-ignore", OnlyRankZeroReduces)


def test_the_starters_are_not_answered_yet_and_give_no_hint():
    def loss_scale(kept, divide_factor): ...

    def pipeline_setup(step_targets): ...

    class MaskedVocabParallelCE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, local_logits, target, vocab_start, all_reduce): ...

        @staticmethod
        def backward(ctx, grad_sum): ...

    for name, starter in [
        ("11-mesh-loss-scale", loss_scale),
        ("11-pipeline-loss", pipeline_setup),
        ("11-vocab-parallel-ignore", MaskedVocabParallelCE),
    ]:
        message = check(name, starter)
        assert "not answered yet" in message and "fill in its body" in message and "Hint" not in message
