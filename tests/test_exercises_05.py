"""Notebook 05's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import math

import torch.nn.functional as F

from exercises import run_check


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
