"""Notebook 02's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import torch
from torch.nn.utils.rnn import pad_sequence

from course.exercises import run_check


def _collate_by_loop(dtype):
    """A collate function that fills zeros tensors in a loop, as a learner might write it."""

    def collate(batch):
        longest = max(len(b["input_ids"]) for b in batch)
        input_ids = torch.zeros(len(batch), longest, dtype=dtype)
        labels = torch.full((len(batch), longest), -100, dtype=dtype)
        mask = torch.zeros(len(batch), longest, dtype=torch.bool)
        for row, b in enumerate(batch):
            n = len(b["input_ids"])
            input_ids[row, :n], labels[row, :n], mask[row, :n] = b["input_ids"], b["labels"], True
        return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}

    return collate


def _causal_pair(token_lists, eos_id, dtype=torch.long):
    seqs = [torch.cat([t, torch.tensor([eos_id])]) for t in token_lists]
    padded = pad_sequence(seqs, batch_first=True, padding_value=eos_id)
    keep = torch.arange(padded.shape[1] - 1) < torch.tensor([len(s) - 1 for s in seqs])[:, None]
    return padded[:, :-1].to(dtype), padded[:, 1:].masked_fill(~keep, -100).to(dtype)


def test_02_collate_refuses_an_attention_mask_built_by_value():
    def by_value(batch):
        ids = pad_sequence([b["input_ids"] for b in batch], batch_first=True, padding_value=0)
        labels = pad_sequence([b["labels"] for b in batch], batch_first=True, padding_value=-100)
        return {"input_ids": ids, "labels": labels, "attention_mask": ids != 0}

    passed, message = run_check("02-collate", by_value)
    assert not passed and "use the lengths" in message


def test_02_collate_names_an_int64_mask_as_hugging_face_returns_it():
    def int_mask(batch):
        collated = _collate_by_loop(torch.long)(batch)
        return {**collated, "attention_mask": collated["attention_mask"].long()}

    passed, message = run_check("02-collate", int_mask)
    assert not passed and "got torch.int64" in message and "int64 1s and 0s, which models accept" in message


def test_02_collate_refuses_float_ids_from_a_zeros_loop():
    passed, message = run_check("02-collate", _collate_by_loop(torch.float32))
    assert not passed and "int64" in message and "torch.float32" in message


def test_02_collate_refuses_int32_ids():
    passed, message = run_check("02-collate", _collate_by_loop(torch.int32))
    assert not passed and "torch.int32" in message


def test_02_collate_accepts_a_loop_over_long_tensors():
    assert run_check("02-collate", _collate_by_loop(torch.long))[0]


def test_02_causal_targets_refuse_float_tensors():
    passed, message = run_check("02-causal-targets", lambda t, eos: _causal_pair(t, eos, torch.float32))
    assert not passed and "inputs should be int64" in message


def test_02_causal_targets_refuse_int32_targets():
    def int32_targets(token_lists, eos_id):
        inputs, targets = _causal_pair(token_lists, eos_id)
        return inputs, targets.int()

    passed, message = run_check("02-causal-targets", int32_targets)
    assert not passed and "targets should be int64" in message


def test_02_causal_targets_accept_an_answer_without_lengths_to_mask():
    assert run_check("02-causal-targets", _causal_pair)[0]


def test_02_collate_names_left_padding():
    def left(batch):
        pad = lambda seqs, value: pad_sequence(  # noqa: E731
            [s.flip(0) for s in seqs], batch_first=True, padding_value=value
        ).flip(1)
        ids = pad([b["input_ids"] for b in batch], 0)
        lengths = torch.tensor([len(b["input_ids"]) for b in batch])
        mask = (torch.arange(ids.shape[1]) < lengths[:, None]).flip(1)
        return {"input_ids": ids, "labels": pad([b["labels"] for b in batch], -100), "attention_mask": mask}

    passed, message = run_check("02-collate", left)
    assert not passed and "padding on the left" in message
