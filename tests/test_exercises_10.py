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


def test_10_answer_mean_accepts_a_mean_over_the_selected_answers():
    def selected(per_token_loss, mask):
        kept = mask.sum(-1)
        if not (kept > 0).any():
            return torch.tensor(0.0)
        return (torch.where(mask, per_token_loss, 0.0).sum(-1)[kept > 0] / kept[kept > 0]).mean()

    passed, message = run_check("10-answer-mean", selected)
    assert passed, message


# --- 10-long-share: each answer's share of the gradient weight -----------------------------------------


def test_10_long_share_says_grpo_gives_each_answer_half():
    passed, message = run_check("10-long-share", lambda short, long, loss_type: long / (short + long))
    assert not passed and "grpo gives each answer half" in message


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
