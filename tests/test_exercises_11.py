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
    # Megatron-LM's per-replica count before core 0.13: K summed over CP only
    message = check("11-mesh-loss-scale", lambda kept, factor: factor / kept[:, :, :1].sum(dim=1, keepdim=True))
    assert "mean of the replicas' means" in message


def test_mesh_loss_scale_names_a_missing_divide_factor():
    message = check("11-mesh-loss-scale", lambda kept, factor: 1 / kept[:, :, 0].sum().clamp(min=1))
    assert "misses the framework's divide factor" in message


def test_mesh_loss_scale_wants_a_guarded_count():
    message = check("11-mesh-loss-scale", lambda kept, factor: factor / kept[:, :, 0].sum())
    assert "clamp(min=1)" in message


def test_mesh_loss_scale_accepts_any_finite_scale_when_nothing_is_kept():
    # Every summed loss is 0 and every gradient zero: 0.0 is as right as factor / 1.
    def loss_scale(kept, factor):
        count = kept[:, :, 0].sum()
        return factor / count if count > 0 else 0.0

    assert check("11-mesh-loss-scale", loss_scale) is None


def test_mesh_loss_scale_accepts_a_float32_answer():
    assert check("11-mesh-loss-scale", lambda kept, f: (f / kept[:, :, 0].sum().clamp(min=1)).float()) is None


def test_mesh_loss_scale_names_each_ranks_own_mean():
    message = check("11-mesh-loss-scale", lambda kept, factor: factor / kept.clamp(min=1))
    assert "each rank divides by its own kept count" in message


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


def test_pipeline_loss_accepts_a_float32_scale_and_a_count_in_a_closure():
    def with_scale(step_targets):
        count = sum((t != -100).sum() for t in step_targets)  # int64: 1.0 / count is float32

        def loss_fn(output, target, scale):
            return F.cross_entropy(output.flatten(0, -2), target.flatten(), reduction="sum") * scale

        return loss_fn, {"scale": 1.0 / count.clamp(min=1)}, False

    def in_a_closure(step_targets):  # torch 2.12 and earlier: step() has no loss_kwargs
        count = int(sum((t != -100).sum() for t in step_targets))
        return (lambda output, target: summed_over(output, target, torch.tensor(count))), {}, False

    assert check("11-pipeline-loss", with_scale) is None
    assert check("11-pipeline-loss", in_a_closure) is None


def test_pipeline_loss_names_a_nan_logged_for_an_empty_micro_batch():
    # mean · k / K: the right gradients, but 0/0 logged for a micro-batch that keeps nothing
    def pipeline_setup(step_targets):
        count = sum((t != -100).sum() for t in step_targets)

        def loss_fn(output, target, K):
            return mean_loss(output, target) * (target != -100).sum() / K

        return loss_fn, {"K": count}, False

    message = check("11-pipeline-loss", pipeline_setup)
    assert "the gradients are right, but a micro-batch that keeps no target logs" in message and "nan" in message


def test_pipeline_loss_names_logged_losses_that_do_not_add_up_to_the_token_mean():
    def pipeline_setup(step_targets):
        count = sum((t != -100).sum() for t in step_targets)
        return (lambda output, target, K: summed_over(output, target, K) + 1.0), {"K": count}, False

    assert "the logged micro-batch losses add up to" in check("11-pipeline-loss", pipeline_setup)


def test_pipeline_loss_names_a_count_of_the_first_step_only():
    message = check(
        "11-pipeline-loss", lambda step_targets: (summed_over, {"K": (step_targets[0] != -100).sum()}, False)
    )
    assert "only the first step()" in message


def test_pipeline_loss_names_a_count_of_the_last_step_only():
    message = check(
        "11-pipeline-loss", lambda step_targets: (summed_over, {"K": (step_targets[-1] != -100).sum()}, False)
    )
    assert "only the last step()" in message


def test_pipeline_loss_names_an_unguarded_count():
    def pipeline_setup(step_targets):
        count = sum((t != -100).sum() for t in step_targets)

        def loss_fn(output, target, K):  # no clamp
            return F.cross_entropy(output.flatten(0, -2), target.flatten(), reduction="sum") / K

        return loss_fn, {"K": count}, False

    message = check("11-pipeline-loss", pipeline_setup)
    assert "the step keeps no target, so K = 0" in message and "K.clamp(min=1)" in message


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


class MaskedInFloat64(torch.autograd.Function):
    """The solution, computed and returned in float64: right, whatever its dtype."""

    @staticmethod
    def forward(ctx, local_logits, target, vocab_start, all_reduce):
        ctx.dtype = local_logits.dtype
        return _rows(ctx, local_logits.double(), target, vocab_start, all_reduce, True, True)

    @staticmethod
    def backward(ctx, grad_sum):
        grad, *rest = _backward(ctx, grad_sum.double())
        return grad.to(ctx.dtype), *rest


def test_vocab_parallel_ignore_passes_a_float64_answer():
    assert check("11-vocab-parallel-ignore", MaskedInFloat64) is None


def test_vocab_parallel_ignore_names_the_ignored_rows_in_the_sum():
    assert "rows whose target is -100, logsumexp − max" in check("11-vocab-parallel-ignore", UnmaskedSum)


def test_vocab_parallel_ignore_names_the_gradient_left_on_ignored_rows():
    assert "still get a gradient" in check("11-vocab-parallel-ignore", MaskedLossOnly)


def test_vocab_parallel_ignore_names_a_backward_that_ignores_grad_sum():
    class ForgetsGradSum(Masked):
        @staticmethod
        def backward(ctx, grad_sum):
            return _backward(ctx, torch.ones_like(grad_sum))

    message = check("11-vocab-parallel-ignore", ForgetsGradSum)
    assert "backward ignores grad_sum" in message and "multiply by it" in message


def test_vocab_parallel_ignore_names_an_unshifted_softmax():
    class Unshifted(torch.autograd.Function):
        """No row maximum: exp of logits in the hundreds overflows float32."""

        @staticmethod
        def forward(ctx, local_logits, target, vocab_start, all_reduce):
            logits = local_logits.detach()
            elsewhere = (target < vocab_start) | (target >= vocab_start + logits.shape[-1])
            local_target = (target - vocab_start).masked_fill(elsewhere, 0)
            predicted = logits.gather(1, local_target[:, None]).squeeze(1).masked_fill(elsewhere, 0.0)
            all_reduce(predicted, "sum")
            exp = logits.exp()
            sum_exp = exp.sum(dim=-1)
            all_reduce(sum_exp, "sum")
            kept = target != -100
            ctx.save_for_backward(exp / sum_exp[:, None], elsewhere, local_target, kept)
            return ((sum_exp.log() - predicted) * kept).sum()

        backward = staticmethod(_backward)

    assert "exp overflows; subtract each row's maximum" in check("11-vocab-parallel-ignore", Unshifted)


def test_vocab_parallel_ignore_names_a_row_maximum_left_local():
    class LocalMax(Masked):
        """The 'max' all-reduce left out: each rank shifts by its own columns' maximum."""

        @staticmethod
        def forward(ctx, local_logits, target, vocab_start, all_reduce):
            def all_reduce_but_max(tensor, op):
                if op != "max":
                    all_reduce(tensor, op)

            return Masked.forward(ctx, local_logits, target, vocab_start, all_reduce_but_max)

    message = check("11-vocab-parallel-ignore", LocalMax)
    assert "each rank subtracts its own columns' maximum" in message and "all-reduce the row maximum" in message


def _skipping_sum(number):
    """Masked, with the number-th 'sum' all-reduce (1: the target's logit, 2: the sum of exponentials) left out."""

    class SkipsSum(Masked):
        @staticmethod
        def forward(ctx, local_logits, target, vocab_start, all_reduce):
            sums = []

            def all_reduce_but_one_sum(tensor, op):
                if op == "sum":
                    sums.append(op)
                    if len(sums) == number:
                        return
                all_reduce(tensor, op)

            return Masked.forward(ctx, local_logits, target, vocab_start, all_reduce_but_one_sum)

    return SkipsSum


def test_vocab_parallel_ignore_names_the_target_logit_left_local():
    message = check("11-vocab-parallel-ignore", _skipping_sum(1))
    assert (
        "as when the target's logit is not all-reduced (only the rank whose columns" in message
        and "with 'sum'" in message
    )


def test_vocab_parallel_ignore_names_the_sum_of_exponentials_left_local():
    message = check("11-vocab-parallel-ignore", _skipping_sum(2))
    assert (
        "as when the sum of exponentials is not all-reduced (each rank's covers" in message and "with 'sum'" in message
    )


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
