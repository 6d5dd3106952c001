"""Notebook 10's exercise checkers (masks in RL fine-tuning); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs, and names the mistake when the answer matches a classic wrong one. A blank
answer (None, or a function that still returns None) never reaches a checker: the front door says
it is not answered yet.
"""

import math
import numbers

import torch


def _number(value, what):
    """``value`` as a float: a Python number or a one-element tensor; a clear message otherwise."""
    if isinstance(value, torch.Tensor):
        assert value.numel() == 1, f"{what}: expected one number, got a tensor of shape {tuple(value.shape)}"
        value = value.item()
    assert isinstance(value, numbers.Real) and not isinstance(value, bool), (
        f"{what}: expected a number, got {type(value).__name__}"
    )
    return float(value)


def _answer_mean_cases():
    """(losses, lengths): random losses, and a batch whose second answer keeps 4 tokens whose losses are all 0
    (a group whose rewards were all equal: A = 0 for every one of its answers)."""
    losses = torch.randn(4, 5, generator=torch.Generator().manual_seed(10))  # masked positions hold values too
    zero_advantage = losses.clone()
    zero_advantage[1] = 0.0
    return [
        (losses, [3, 5, 0, 1]),
        (losses, [0, 0, 0, 0]),
        (losses, [5, 2, 5, 4]),
        (zero_advantage, [3, 4, 0, 5]),
    ]


def _check_answer_mean(answer):
    for losses, lengths in _answer_mean_cases():
        mask = torch.arange(5) < torch.tensor(lengths)[:, None]
        case = f"for answers keeping {lengths} of 5 tokens"
        if (losses[1] == 0).all():
            case += " (answer 1's losses all 0: its group had A = 0)"
        leaf = losses.clone().requires_grad_()  # a loss is for backward(): its gradient must be right too
        result = answer(leaf.clone(), mask.clone())  # a clone: in-place edits of the answer's input are allowed
        value = _number(result.detach() if isinstance(result, torch.Tensor) else result, case)
        kept = mask.sum(-1)
        answers = (kept > 0).sum().clamp(min=1)
        per_answer = (losses * mask).sum(-1) / kept.clamp(min=1)
        want = (per_answer.sum() / answers).item()
        if abs(value - want) < 1e-5:
            _check_answer_mean_gradient(result, leaf, mask, kept, answers, case)
            continue
        if math.isnan(value):
            if kept.sum() == 0:
                raise AssertionError(
                    f"{case} got nan: when no answer keeps a token, the number of answers averaged is 0; "
                    "clamp it to at least 1, so that the mean is 0"
                )
            raise AssertionError(
                f"{case} got nan: an answer with no kept token divides 0 by 0; clamp each answer's count to at least 1"
            )
        mistakes = {
            "that averages over all the answers, the masked ones included (as trl's grpo does): a masked "
            "answer dilutes the mean; divide by the number of answers that keep a token": per_answer.mean(),
            "that is the token mean (bnpo): each token counts the same, so long answers weigh more; "
            "average within each answer first": (losses * mask).sum() / kept.sum().clamp(min=1),
            "masked positions hold values that must not count: multiply by the mask before summing": (
                losses.sum(-1) / kept.clamp(min=1)
            ).sum()
            / answers,
            "each answer's sum is divided by all its positions, padding included (a mean over the last "
            "dimension): divide it by its kept count": (losses * mask).mean(-1).sum() / answers,
            "that counts the answers (or tokens) that keep a token by a non-zero loss; an answer whose losses "
            "are all 0 is kept (a group whose rewards were all equal has A = 0) and must count: count kept "
            "answers and tokens from the mask": per_answer.sum() / (per_answer != 0).sum().clamp(min=1),
        }
        message = f"{case} expected {want:.4f}, got {value:.4f}"
        for mistake, wrong in mistakes.items():
            if abs(value - wrong.item()) < 1e-5:
                message += f": {mistake}"
                break
        raise AssertionError(message)


def _check_answer_mean_gradient(result, leaf, mask, kept, answers, case):
    """The value is right: the result must be a loss that backward() trains through, with the right gradient."""
    assert isinstance(result, torch.Tensor), (
        f"{case} the value is right, but it is a {type(result).__name__}, not a tensor: a loss must stay in "
        "autograd's graph for backward(); return the tensor, without .item() or float()"
    )
    assert result.requires_grad, (
        f"{case} the value is right, but the result does not require grad: it was computed under "
        "torch.no_grad(), from .detach() or .data, or built as a new tensor (torch.tensor(0.0)), so backward() "
        "cannot reach per_token_loss. Compute it from per_token_loss, even the 0 when no answer keeps a token "
        "((per_token_loss * mask).sum() is 0 and in the graph: 07 §3 shows why every process needs its backward)"
    )
    (grad,) = torch.autograd.grad(result.sum(), leaf, allow_unused=True)
    grad = torch.zeros_like(leaf) if grad is None else grad
    assert torch.isfinite(grad).all(), (
        f"{case} the value is right, but its gradient holds nan: an answer with no kept token "
        "divides 0 by 0, and dropping that nan afterwards (indexing, nansum, nan_to_num) keeps it in the "
        "backward pass; clamp each answer's count to at least 1 before dividing"
    )
    want = mask / (kept.clamp(min=1) * answers)[:, None]  # 1 / (answers kept × own length) on each kept token
    assert torch.allclose(grad, want, atol=1e-6), (
        f"{case} the value is right, but the gradient is not: each kept token of answer i must get "
        "1 / (number of answers kept × answer i's kept tokens), a masked one 0; part of the result is "
        "detached, or a detached correction was added to another aggregation"
    )


def _check_long_share(answer):
    for short, long in ((3, 30), (10, 1000), (2, 2), (1, 7)):
        for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo"):
            case = f"for answers of {short} and {long} tokens under {loss_type!r}"
            value = _number(answer(short, long, loss_type), case)
            want = 0.5 if loss_type == "grpo" else long / (short + long)
            if abs(value - want) < 1e-6:
                continue
            message = f"{case} expected {want:.4f}, got {value:.4f}"
            if loss_type == "grpo" and abs(value - long / (short + long)) < 1e-6:
                message += ": that is the share when every token weighs the same; grpo gives each answer half"
            elif loss_type == "grpo" and abs(value - short / (short + long)) < 1e-6:
                message += (
                    ": that is the short answer's share of the tokens; under grpo each of its tokens weighs more, but "
                    "it has fewer of them: each answer's total is 1/2"
                )
            elif loss_type == "dr_grpo" and abs(value - 0.5) < 1e-6:
                message += (
                    ": that is the long answer's total weight under dr_grpo, whose weights need not add up to 1; "
                    "its share divides it by all the weight"
                )
            elif loss_type != "grpo" and abs(value - 0.5) < 1e-6:
                message += f": 0.5 is grpo's share; {loss_type} gives every token the same weight"
            elif any(abs(value - w) < 1e-6 for w in (1 / (short + long), 1 / (2 * long), 1 / (2 * short))):
                message += ": that is the weight of one token, not the whole answer's share of all the weight"
            raise AssertionError(message)


def _check_read_position(answer):
    cases = [  # (input_ids, attention_mask, where to read); pad id = EOS id = 1
        ([[2, 5, 3, 6, 4, 1], [2, 5, 3, 6, 4, 1], [2, 5, 4, 1, 1, 1]], [[1] * 6, [1] * 5 + [0], [1] * 4 + [0, 0]]),
        ([[1, 1, 2, 5, 4, 1], [2, 5, 3, 6, 4, 1], [1, 1, 1, 1, 4, 1]], [[0, 0, 1, 1, 1, 1], [1] * 6, [0] * 4 + [1, 1]]),
        ([[4, 1, 1]], [[1, 0, 0]]),
    ]
    for ids, mask in cases:
        input_ids, attention_mask = torch.tensor(ids), torch.tensor(mask)
        got = answer(input_ids.clone(), attention_mask.clone())
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        want = (torch.arange(input_ids.shape[1]) * attention_mask).argmax(-1)
        case = f"for input_ids {ids} and attention_mask {mask}"
        assert got.shape == want.shape, (
            f"{case} expected one position per row, shape {tuple(want.shape)}, got {tuple(got.shape)}"
        )
        if torch.equal(got.long(), want):
            continue
        message = f"{case} expected {want.tolist()}, got {got.tolist()}"
        not_pad = (torch.arange(input_ids.shape[1]) * (input_ids != 1)).argmax(-1)
        before_first_pad = ((input_ids == 1).int().argmax(-1) - 1) % input_ids.shape[1]
        if torch.equal(got.long(), not_pad) or torch.equal(got.long(), before_first_pad):
            message += (
                ": that is transformers' rule (the rightmost token that is not the pad id, or up to 4.48 the "
                "token before the first pad id); with pad = EOS either form skips the real EOS. Read where "
                "attention_mask is 1"
            )
        elif (got == input_ids.shape[1] - 1).all():
            message += ": the last column is padding in a row padded on the right"
        elif torch.equal(got.long(), attention_mask.sum(-1) - 1):
            message += (
                ": counting the real tokens finds the last one only when the padding is on the right; "
                "this batch is padded on the left"
            )
        raise AssertionError(message)


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "10-answer-mean": (
        _check_answer_mean,
        "per answer: sum of masked losses / its count clamped to 1; "
        "then divide by the number of answers with a count > 0, clamped to 1",
    ),
    "10-long-share": (
        _check_long_share,
        "grpo: each answer's tokens share 1/number of answers; the others: every token weighs the same",
    ),
    "10-read-position": (
        _check_read_position,
        "the rightmost position whose attention_mask is 1: argmax of position * attention_mask",
    ),
}
