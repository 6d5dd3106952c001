"""Notebook 10's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import torch

from course.exercises import run_check

# --- 10-answer-mean: grpo's per-answer mean, without nan and without dilution -------------------------


def test_10_answer_mean_names_the_nan_of_an_answer_with_no_kept_token():
    def no_clamp(per_token_loss, mask):
        kept = mask.sum(-1)
        return ((per_token_loss * mask).sum(-1) / kept).sum() / (kept > 0).sum()

    passed, message = run_check("10-answer-mean", no_clamp)
    assert not passed and "divides 0 by 0" in message


def test_10_answer_mean_names_the_nan_when_no_answer_keeps_a_token():
    def answers_unguarded(per_token_loss, mask):
        kept = mask.sum(-1)
        return ((per_token_loss * mask).sum(-1) / kept.clamp(min=1)).sum() / (kept > 0).sum()

    passed, message = run_check("10-answer-mean", answers_unguarded)
    assert not passed and "the number of answers averaged is 0" in message


def test_10_answer_mean_names_the_nan_gradient_of_a_nan_dropped_after_dividing():
    def drop_after_dividing(per_token_loss, mask):
        count = mask.sum(-1)
        per_answer = (per_token_loss * mask).sum(-1) / count  # 0 / 0 = nan for an empty answer
        kept = count > 0
        return per_answer[kept].mean() if kept.any() else per_token_loss.sum() * 0

    passed, message = run_check("10-answer-mean", drop_after_dividing)
    assert not passed and "gradient holds nan" in message


def test_10_answer_mean_names_the_dilution_of_a_mean_over_all_answers():
    def trl_grpo(per_token_loss, mask):
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()

    passed, message = run_check("10-answer-mean", trl_grpo)
    assert not passed and "the masked ones included" in message


def test_10_answer_mean_names_the_token_mean():
    def token_mean(per_token_loss, mask):
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1)

    passed, message = run_check("10-answer-mean", token_mean)
    assert not passed and "token mean (bnpo)" in message


def test_10_answer_mean_says_masked_positions_must_not_count():
    def unmasked_sum(per_token_loss, mask):
        kept = mask.sum(-1)
        return (per_token_loss.sum(-1) / kept.clamp(min=1)).sum() / (kept > 0).sum().clamp(min=1)

    passed, message = run_check("10-answer-mean", unmasked_sum)
    assert not passed and "multiply by the mask" in message


def test_10_answer_mean_names_a_mean_over_every_position_padding_included():
    def mean_over_positions(per_token_loss, mask):
        kept_answers = (mask.sum(-1) > 0).sum().clamp(min=1)
        return (per_token_loss * mask).mean(-1).sum() / kept_answers

    passed, message = run_check("10-answer-mean", mean_over_positions)
    assert not passed and "padding included" in message


def test_10_answer_mean_names_kept_answers_counted_by_a_non_zero_loss():
    def non_zero_answers(per_token_loss, mask):
        per_answer = (per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1)
        return per_answer.sum() / (per_answer != 0).sum().clamp(min=1)

    def non_zero_tokens(per_token_loss, mask):
        kept = (per_token_loss * mask != 0).sum(-1)
        return ((per_token_loss * mask).sum(-1) / kept.clamp(min=1)).sum() / (kept > 0).sum().clamp(min=1)

    for answer in (non_zero_answers, non_zero_tokens):
        passed, message = run_check("10-answer-mean", answer)
        assert not passed and "by a non-zero loss" in message and "A = 0" in message, message


def solution(per_token_loss, mask):
    kept = mask.sum(-1)
    per_answer = (per_token_loss * mask).sum(-1) / kept.clamp(min=1)
    return per_answer.sum() / (kept > 0).sum().clamp(min=1)


def test_10_answer_mean_says_a_result_computed_without_grad_cannot_be_trained_through():
    def under_no_grad(per_token_loss, mask):
        with torch.no_grad():
            return solution(per_token_loss, mask)

    def detached(per_token_loss, mask):
        return solution(per_token_loss, mask).detach()

    def from_data(per_token_loss, mask):
        return solution(per_token_loss.data, mask)

    for answer in (under_no_grad, detached, from_data):
        passed, message = run_check("10-answer-mean", answer)
        assert not passed and "does not require grad" in message, message


def test_10_answer_mean_says_a_python_number_is_not_a_loss():
    passed, message = run_check("10-answer-mean", lambda per_token_loss, mask: solution(per_token_loss, mask).item())
    assert not passed and "not a tensor" in message


def test_10_answer_mean_says_a_new_zero_tensor_has_no_backward():
    def new_zero(per_token_loss, mask):
        if not mask.any():
            return torch.tensor(0.0)
        return solution(per_token_loss, mask)

    passed, message = run_check("10-answer-mean", new_zero)
    assert not passed and "no answer keeps a token" in message and "does not require grad" in message


def test_10_answer_mean_names_the_right_value_with_another_aggregations_gradient():
    def straight_through(per_token_loss, mask):  # the value of the answer, the gradient of bnpo
        token_mean = (per_token_loss * mask).sum() / mask.sum().clamp(min=1)
        return token_mean + (solution(per_token_loss, mask) - token_mean).detach()

    passed, message = run_check("10-answer-mean", straight_through)
    assert not passed and "the gradient is not" in message


def test_10_answer_mean_names_a_nan_replaced_after_dividing():
    def nan_to_num(per_token_loss, mask):
        kept = mask.sum(-1)
        per_answer = torch.nan_to_num((per_token_loss * mask).sum(-1) / kept)  # 0 / 0 replaced by 0
        return per_answer.sum() / (kept > 0).sum().clamp(min=1)

    passed, message = run_check("10-answer-mean", nan_to_num)
    assert not passed and "gradient holds nan" in message


def test_10_answer_mean_accepts_a_mean_over_the_selected_answers():
    def selected(per_token_loss, mask):
        kept = mask.sum(-1)
        if not (kept > 0).any():
            return (per_token_loss * mask).sum()  # 0, and still in the graph
        return (torch.where(mask, per_token_loss, 0.0).sum(-1)[kept > 0] / kept[kept > 0]).mean()

    passed, message = run_check("10-answer-mean", selected)
    assert passed, message


def test_10_answer_mean_accepts_a_loop_over_the_answers():
    def loop(per_token_loss, mask):
        means = [row[keep].mean() for row, keep in zip(per_token_loss, mask, strict=True) if keep.any()]
        return torch.stack(means).mean() if means else per_token_loss.sum() * 0

    passed, message = run_check("10-answer-mean", loop)
    assert passed, message


# --- 10-long-share: each answer's share of the gradient weight -----------------------------------------


def test_10_long_share_says_grpo_gives_each_answer_half():
    passed, message = run_check("10-long-share", lambda short, long, loss_type: long / (short + long))
    assert not passed and "grpo gives each answer half" in message


def test_10_long_share_names_the_short_answers_share_of_the_tokens_under_grpo():
    def short_share(short, long, loss_type):
        return short / (short + long) if loss_type == "grpo" else long / (short + long)

    passed, message = run_check("10-long-share", short_share)
    assert not passed and "it has fewer of them: each answer's total is 1/2" in message


def test_10_long_share_says_token_level_losses_weigh_every_token_the_same():
    passed, message = run_check("10-long-share", lambda short, long, loss_type: 0.5)
    assert not passed and "bnpo gives every token the same weight" in message


def test_10_long_share_names_one_tokens_weight():
    def one_token(short, long, loss_type):
        return 1 / (2 * long) if loss_type == "grpo" else long / (short + long)

    passed, message = run_check("10-long-share", one_token)
    assert not passed and "the weight of one token" in message


def test_10_long_share_names_dr_grpos_total_weight():
    def total_weight(short, long, loss_type):
        return {"grpo": 0.5, "dr_grpo": long / (2 * long)}.get(loss_type, long / (short + long))

    passed, message = run_check("10-long-share", total_weight)
    assert not passed and "weights need not add up to 1" in message


def test_10_long_share_accepts_a_tensor_computed_with_autograd():
    def with_autograd(short, long, loss_type):
        mask = torch.arange(long) < torch.tensor([short, long])[:, None]
        per_token = torch.zeros(mask.shape, requires_grad=True)
        summed = (per_token * mask).sum(-1)
        loss = (summed / mask.sum(-1)).mean() if loss_type == "grpo" else summed.sum() / mask.sum()
        loss.backward()
        return per_token.grad[1].sum() / per_token.grad.sum()

    passed, message = run_check("10-long-share", with_autograd)
    assert passed, message


# --- 10-read-position: where a reward model should read its score --------------------------------------


def test_10_read_position_names_transformers_rule_which_skips_the_eos_when_pad_is_eos():
    def rightmost_not_pad(input_ids, attention_mask):
        return (torch.arange(input_ids.shape[1]) * (input_ids != 1)).argmax(-1)

    passed, message = run_check("10-read-position", rightmost_not_pad)
    assert not passed and "transformers' rule" in message


def test_10_read_position_names_the_rule_of_transformers_up_to_4_48_too():
    def before_first_pad(input_ids, attention_mask):
        return ((input_ids == 1).int().argmax(-1) - 1) % input_ids.shape[1]

    passed, message = run_check("10-read-position", before_first_pad)
    assert not passed and "up to 4.48" in message and "skips the real EOS" in message


def test_10_read_position_says_the_last_column_is_padding():
    passed, message = run_check("10-read-position", lambda ids, mask: torch.full((ids.shape[0],), ids.shape[1] - 1))
    assert not passed and "the last column is padding" in message


def test_10_read_position_says_counting_fails_on_left_padding():
    passed, message = run_check("10-read-position", lambda ids, mask: mask.sum(-1) - 1)
    assert not passed and "padded on the left" in message


def test_10_read_position_accepts_the_last_one_of_the_flipped_mask():
    def flipped(input_ids, attention_mask):
        return attention_mask.shape[1] - 1 - attention_mask.flip(-1).argmax(-1)

    passed, message = run_check("10-read-position", flipped)
    assert passed, message
