"""Notebook 06's exercise checkers catch the mistakes the lesson warns against.

Each test hands a checker a wrong answer a learner would write (it must fail, and say why) or an
unusual right one (it must pass).
"""

import pytest
import torch

from course.exercises import run_check


def test_06_assistant_labels_names_a_shift():
    def shifted(input_ids, assistant_id, end_id):
        labels = torch.full_like(input_ids, -100)
        for b, row in enumerate(input_ids.tolist()):
            inside = False
            for t, token in enumerate(row):
                if inside and t > 0:
                    labels[b, t - 1] = token  # already shifted, as notebook 02's targets
                inside = (inside and token != end_id) or token == assistant_id
        return labels

    passed, message = run_check("06-assistant-labels", shifted)
    assert not passed and "shifted by one" in message


def test_06_assistant_labels_names_labelling_only_the_first_assistant_turn():
    def first_turn_only(input_ids, assistant_id, end_id):
        labels = torch.full_like(input_ids, -100)
        for b, row in enumerate(input_ids.tolist()):
            if assistant_id in row:
                start = row.index(assistant_id) + 1  # list.index finds the first header only
                end = row.index(end_id, start) + 1 if end_id in row[start:] else len(row)
                labels[b, start:end] = input_ids[b, start:end]
        return labels

    passed, message = run_check("06-assistant-labels", first_turn_only)
    assert not passed and "only the first assistant turn" in message


def _per_row_state(ids, assistant_id, end_id):
    """Is each token inside an assistant turn, reading each row of ``ids`` from its start? (a vectorised answer)"""
    idx = torch.arange(ids.shape[-1]).expand_as(ids)
    last_header = torch.where(ids == assistant_id, idx, -1).cummax(dim=-1).values
    last_end = torch.where(ids == end_id, idx, -1).cummax(dim=-1).values
    open_after = last_header > last_end  # a turn is open after this token
    return torch.cat([torch.zeros_like(open_after[..., :1]), open_after[..., :-1]], dim=-1)


def test_06_assistant_labels_accepts_a_vectorised_answer_along_each_row():
    def vectorised(input_ids, assistant_id, end_id):
        inside = _per_row_state(input_ids, assistant_id, end_id)
        return torch.where(inside, input_ids, torch.full_like(input_ids, -100))

    passed, message = run_check("06-assistant-labels", vectorised)
    assert passed, message


def test_06_assistant_labels_names_a_turn_state_carried_into_the_next_row():
    def inside_set_once_per_batch(input_ids, assistant_id, end_id):
        labels = torch.full_like(input_ids, -100)
        inside = False  # set once, before the rows: a cut-off turn runs on into the next row
        for b, row in enumerate(input_ids.tolist()):
            for t, token in enumerate(row):
                if inside:
                    labels[b, t] = token
                    inside = token != end_id
                elif token == assistant_id:
                    inside = True
        return labels

    passed, message = run_check("06-assistant-labels", inside_set_once_per_batch)
    assert not passed and "starts inside an assistant turn" in message and "turns never cross rows" in message


def test_06_assistant_labels_names_a_vectorised_answer_over_the_flattened_batch():
    def flattened(input_ids, assistant_id, end_id):
        inside = _per_row_state(input_ids.flatten(), assistant_id, end_id).view_as(input_ids)
        return torch.where(inside, input_ids, torch.full_like(input_ids, -100))

    passed, message = run_check("06-assistant-labels", flattened)
    assert not passed and "starts inside an assistant turn" in message


def test_06_assistant_labels_names_a_dropped_end_token():
    def no_end(input_ids, assistant_id, end_id):
        inside = _per_row_state(input_ids, assistant_id, end_id) & (input_ids != end_id)
        return torch.where(inside, input_ids, torch.full_like(input_ids, -100))

    passed, message = run_check("06-assistant-labels", no_end)
    assert not passed and "end-of-turn token is -100" in message


def test_06_assistant_labels_names_labelled_padding():
    def with_padding(input_ids, assistant_id, end_id):
        inside = _per_row_state(input_ids, assistant_id, end_id) | (input_ids == 0)
        return torch.where(inside, input_ids, torch.full_like(input_ids, -100))

    passed, message = run_check("06-assistant-labels", with_padding)
    assert not passed and "padding is labelled" in message


def test_06_assistant_labels_names_a_labelled_user_end_token():
    def every_end(input_ids, assistant_id, end_id):
        inside = _per_row_state(input_ids, assistant_id, end_id) | (input_ids == end_id)
        return torch.where(inside, input_ids, torch.full_like(input_ids, -100))

    passed, message = run_check("06-assistant-labels", every_end)
    assert not passed and "a user turn's end token is labelled" in message


def test_06_assistant_labels_names_user_turns_after_the_first_assistant_turn():
    def after_first_header(input_ids, assistant_id, end_id):
        seen = (input_ids == assistant_id).long().cumsum(dim=1) > 0
        after = torch.cat([torch.zeros_like(seen[:, :1]), seen[:, :-1]], dim=1) & (input_ids != 0)
        return torch.where(after, input_ids, torch.full_like(input_ids, -100))

    passed, message = run_check("06-assistant-labels", after_first_header)
    assert not passed and "user turns after the first assistant turn" in message


def test_06_assistant_labels_names_a_labelled_header():
    def with_header(input_ids, assistant_id, end_id):
        inside = _per_row_state(input_ids, assistant_id, end_id) | (input_ids == assistant_id)
        return torch.where(inside, input_ids, torch.full_like(input_ids, -100))

    passed, message = run_check("06-assistant-labels", with_header)
    assert not passed and "assistant header is labelled" in message


def test_06_assistant_labels_names_a_dropped_cut_off_turn():
    def only_closed_turns(input_ids, assistant_id, end_id):
        labels = torch.full_like(input_ids, -100)
        for b, row in enumerate(input_ids.tolist()):
            start = None
            for t, token in enumerate(row):
                if token == assistant_id:
                    start = t + 1
                elif token == end_id and start is not None:
                    labels[b, start : t + 1] = input_ids[b, start : t + 1]  # written only once the turn ends
                    start = None
        return labels

    passed, message = run_check("06-assistant-labels", only_closed_turns)
    assert not passed and "cut off by truncation" in message


def test_06_assistant_labels_names_minus_one_for_ignored_labels():
    def with_minus_one(input_ids, assistant_id, end_id):
        inside = _per_row_state(input_ids, assistant_id, end_id)
        return torch.where(inside, input_ids, torch.full_like(input_ids, -1))  # the -1 trick's sentinel

    passed, message = run_check("06-assistant-labels", with_minus_one)
    assert not passed and "use -100" in message


def _pack(docs):
    row = dict(
        input_ids=[token for doc in docs for token in doc],
        labels=[label for doc in docs for label in [-100, *doc[1:]]],
        position_ids=[i for doc in docs for i in range(len(doc))],
    )
    return {key: torch.tensor([values]) for key, values in row.items()}


def test_06_pack_accepts_torch_cat():
    def with_cat(docs):
        tensors = [torch.tensor(doc) for doc in docs]
        labels = [torch.cat([torch.tensor([-100]), t[1:]]) for t in tensors]
        return dict(
            input_ids=torch.cat(tensors)[None],
            labels=torch.cat(labels)[None],
            position_ids=torch.cat([torch.arange(len(t)) for t in tensors])[None],
        )

    passed, message = run_check("06-pack", with_cat)
    assert passed, message


def test_06_pack_names_an_attention_mask_of_ones():
    def with_mask(docs):
        packed = _pack(docs)
        return packed | dict(attention_mask=torch.ones_like(packed["input_ids"]))  # "for completeness"

    passed, message = run_check("06-pack", with_mask)
    assert not passed and "attention_mask" in message and "block-diagonal" in message


def test_06_pack_names_documents_changed_in_place():
    def mutating(docs):
        packed = _pack(docs)
        for doc in docs:
            doc[0] = -100  # the caller's dataset, corrupted
        return packed

    passed, message = run_check("06-pack", mutating)
    assert not passed and "documents passed in were changed" in message


def _allowed(position_ids, causal=True, rule="library"):
    pos = position_ids[0]
    starts = {
        "library": torch.diff(pos, prepend=pos[:1] - 1) != 1,
        "zero": pos == 0,
        "none": pos != pos,
        "not-increasing": torch.diff(pos, prepend=pos[:1] - 1) <= 0,  # misses positions that jump upward
    }[rule]
    document = starts.long().cumsum(0)
    allowed = document[:, None] == document[None, :]
    return allowed & torch.ones_like(allowed).tril() if causal else allowed


LOWEST = torch.finfo(torch.float32).min


def _additive(allowed, blocked=LOWEST, dtype=torch.float32):
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, blocked)[None, None]


@pytest.mark.parametrize("blocked", [float("-inf"), -1e9], ids=["minus-inf", "minus-1e9"])
def test_06_block_mask_accepts_other_numbers_that_swamp_a_score(blocked):
    passed, message = run_check("06-block-mask", lambda p: _additive(_allowed(p), blocked=blocked))
    assert passed, message


@pytest.mark.parametrize(
    "answer, named",
    [
        (lambda p: _allowed(p)[None, None], "boolean mask"),
        (lambda p: _additive(_allowed(p, rule="zero")), "positions need not start at 0"),
        (lambda p: _additive(_allowed(p, rule="none")), "plain causal mask"),
        (lambda p: _additive(_allowed(p, causal=False)), "keep the causal triangle"),
        (lambda p: _additive(~_allowed(p)), "inverted"),
        (lambda p: _additive(_allowed(p, rule="not-increasing")), "positions that jump upward"),
        (lambda p: _additive(_allowed(p), blocked=-100.0), "as the exercise asks"),
        (lambda p: _additive(_allowed(p), blocked=-1e4), "as the exercise asks"),  # BERT's classic value
        (lambda p: _additive(_allowed(p), blocked=torch.finfo(torch.float16).min), "as the exercise asks"),
        (lambda p: _allowed(p).float()[None, None], "1/0 mask"),  # the 2-D attention_mask's convention
        (lambda p: _additive(_allowed(p), blocked=1.0), "blocks nothing"),
        (lambda p: _additive(_allowed(p), dtype=torch.float64), "float32"),
        (lambda p: _additive(_allowed(p))[0, 0], "shape (1, 1,"),
    ],
    ids=[
        "bool",
        "zero-rule",
        "causal-only",
        "not-causal",
        "inverted",
        "not-increasing-rule",
        "minus-100",
        "minus-1e4",
        "float16-min",
        "one-zero",
        "plus-one",
        "float64",
        "2-D",
    ],
)
def test_06_block_mask_names_the_mistake(answer, named):
    passed, message = run_check("06-block-mask", answer)
    assert not passed and named in message, message
