"""Notebook 07's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import torch
import torch.nn.functional as F

from exercises import run_check


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
