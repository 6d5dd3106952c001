"""Notebook 02's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

from course.exercises import run_check


def test_02_collate_refuses_an_attention_mask_built_by_value():
    from torch.nn.utils.rnn import pad_sequence

    def by_value(batch):
        ids = pad_sequence([b["input_ids"] for b in batch], batch_first=True, padding_value=0)
        labels = pad_sequence([b["labels"] for b in batch], batch_first=True, padding_value=-100)
        return {"input_ids": ids, "labels": labels, "attention_mask": ids != 0}

    passed, message = run_check("02-collate", by_value)
    assert not passed and "use the lengths" in message
