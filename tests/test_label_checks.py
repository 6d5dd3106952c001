"""label_checks finds each planted problem by its tag and place, says nothing about a sound batch (pad = EOS,
no mask, packed and padding-free included), raises only when it is called wrongly, and works when copied
alone into another project. Realistic template batches are in test_label_checks_matrix.py.

The batches use ids 0 = pad, 1 = end of turn, 2 = a template header, 3.. = words; vocabulary of 20.
"""

import ast
import copy
import doctest
import pathlib
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import label_checks
from label_checks import Finding, check_batch, check_labels, checking_collator, show_labels, summarize_labels

PAD, END, HEADER, V = 0, 1, 2, 20
OPTIONS = dict(vocab_size=V, end_ids=[END], never_train_ids=[PAD, HEADER])
EOS_PADDED = dict(vocab_size=V, end_ids=[END], never_train_ids=[HEADER])  # pad = end: the pad id is no never-train


def sound():
    """Two chats: header, prompt, answer ending in END (trained), then padding in row 1."""
    ids = torch.tensor([[2, 5, 6, 2, 7, 8, 1], [2, 9, 2, 10, 1, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]])
    labels = torch.tensor([[-100, -100, -100, -100, 7, 8, 1], [-100, -100, -100, 10, 1, -100, -100]])
    return ids, labels, mask


def tags(findings):
    return [finding.tag for finding in findings]


def test_a_sound_batch_has_no_finding():
    assert check_labels(*sound(), **OPTIONS) == []


def test_a_single_row_of_shape_t_is_checked_as_row_0():
    ids, labels, mask = sound()
    assert check_labels(ids[0], labels[0], mask[0], **OPTIONS) == []
    assert check_labels(ids[0], torch.full_like(ids[0], -100), end_ids=[END]) == [
        "[no-target] row 0: no trained target after the shift; it teaches nothing, a batch of such rows gives "
        "nan: drop it, or cut the prompt rather than the answer"
    ]


def test_the_first_label_is_dropped_by_the_shift_and_never_judged():
    ids, labels, mask = sound()
    labels[:, 0] = -7  # never a target: the model shifts it away
    assert check_labels(ids, labels, mask, **OPTIONS) == []


def broken(fault):
    """A sound batch with one planted fault; returns (ids, labels, mask, options, row, positions)."""
    ids, labels, mask = sound()
    options = dict(OPTIONS)
    if fault == "no-target":  # truncation cut the whole answer
        labels[1] = -100
        return ids, labels, mask, options, 1, (0, 1, 2, 3, 4)
    if fault == "pad-kept":  # labels copied from input_ids, padding included
        labels[1, 5:] = 0
        options["never_train_ids"] = [HEADER]
        return ids, labels, mask, options, 1, (5, 6)
    if fault == "shifted":  # notebook 02's targets passed as labels
        labels[0, 4:6] = torch.tensor([8, 1])
        labels[0, 6] = -100
        return ids, labels, mask, options, 0, (4, 5)
    if fault == "never-train":  # a header inside the trained span
        labels[0, 3] = HEADER
        return ids, labels, mask, options, 0, (3,)
    if fault == "end-not-trained":  # the stop token outside {% generation %}
        labels[0, 6] = -100
        return ids, labels, mask, options, 0, (6,)
    if fault == "no-end":  # an answer cut by truncation
        ids, labels, mask = ids[:, :5], labels[:, :5], mask[:, :5]
        return ids, labels, mask, options, 0, (4,)
    if fault == "out-of-range":  # the -1 trick with the default ignore_index
        labels[1, 3] = -1
        return ids, labels, mask, options, 1, (3,)
    if fault == "input-out-of-range":  # a pad token added to the tokenizer, the embeddings not resized
        ids[1, 5:] = V
        return ids, labels, mask, options, 1, (5, 6)
    raise AssertionError(fault)


FAULTS = ["no-target", "pad-kept", "shifted", "never-train", "end-not-trained", "no-end", "out-of-range"]


@pytest.mark.parametrize("fault", [*FAULTS, "input-out-of-range"])
def test_each_planted_fault_is_found_by_its_tag_row_and_positions(fault):
    ids, labels, mask, options, row, positions = broken(fault)
    (finding,) = check_labels(ids, labels, mask, **options)
    assert (finding.tag, finding.row, finding.positions) == (fault, row, positions), finding
    assert finding.startswith(f"[{fault}] row {row}")


def test_a_finding_is_its_line_with_the_tag_row_positions_and_ids_as_attributes():
    ids, labels, mask, options, *_ = broken("never-train")
    (finding,) = check_labels(ids, labels, mask, **options)
    assert isinstance(finding, str) and isinstance(finding, Finding)
    assert (finding.tag, finding.row, finding.positions, finding.ids) == ("never-train", 0, (3,), (HEADER,))
    assert str(finding) == finding and "\n".join([finding, finding]).count("[never-train]") == 2
    assert copy.deepcopy(finding).positions == (3,)


def test_labels_that_are_not_int64_are_reported_not_refused():
    ids, labels, mask = sound()
    assert tags(check_labels(ids, labels.int(), mask, **OPTIONS)) == ["dtype"]


# --- pad = EOS, the common recipe (review H1, H2) --------------------------------------------------------


def pad_is_end():
    """The review's batch: 1 = end = pad; row 1 trains its end, then one pad."""
    ids = torch.tensor([[5, 6, 7, 8, 1], [5, 6, 9, 1, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    labels = torch.tensor([[-100, -100, 7, 8, 1], [-100, -100, 9, 1, -100]])
    return ids, labels, mask


def test_pad_equal_to_end_in_never_train_ids_is_a_calling_error_not_a_finding():
    with pytest.raises(ValueError, match=r"end_ids and never_train_ids share id\(s\) \[1\].*leave the pad id out"):
        check_labels(*pad_is_end(), end_ids=[1], never_train_ids=[1])


def test_a_sound_pad_equal_to_end_batch_passes_with_or_without_its_mask():
    ids, labels, mask = pad_is_end()
    assert check_labels(ids, labels, mask, end_ids=[1]) == []
    assert check_labels(ids, labels, end_ids=[1]) == []  # None: no padding, and the end before the pad is trained


def test_pad_equal_to_end_masked_by_value_loses_the_real_end_mask_or_not():
    # DataCollatorForLanguageModeling with pad_token = eos_token: every id 1 became -100
    ids, labels, mask = pad_is_end()
    labels[ids == 1] = -100
    for findings in (check_labels(ids, labels, mask, end_ids=[1]), check_labels(ids, labels, end_ids=[1])):
        where = [(f.tag, f.row, f.positions) for f in findings]
        assert where == [("end-not-trained", 0, (4,)), ("end-not-trained", 1, (3,))]


def test_a_padding_free_row_padded_with_eos_as_trl_does_is_judged_from_position_ids():
    # trl 1.16 padding_free: two examples in one row, labels -100 where position_ids restart, padded to a
    # multiple with the pad id (= EOS), position 0 and label -100; no attention_mask
    ids = torch.tensor([[5, 6, 7, 1, 5, 8, 9, 1, 1, 1]])
    pos = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3, 0, 0]])
    labels = torch.tensor([[-100, -100, 7, 1, -100, -100, 9, 1, -100, -100]])
    assert check_labels(ids, labels, position_ids=pos, end_ids=[1]) == []
    labels[0, 3] = -100  # the first example's end left out
    (finding,) = check_labels(ids, labels, position_ids=pos, end_ids=[1])
    assert (finding.tag, finding.positions) == ("end-not-trained", (3,))


# --- the end checks (review M1, M4, M5, M10, L11) --------------------------------------------------------


def test_end_ids_must_be_given_and_an_empty_list_turns_the_end_checks_off_on_purpose():
    ids, labels, mask, *_ = broken("end-not-trained")
    with pytest.raises(TypeError, match="end_ids"):
        check_labels(ids, labels, mask)
    assert check_labels(ids, labels, mask, end_ids=[]) == []


def test_an_end_token_after_a_space_outside_the_span_is_end_not_trained_not_no_end():
    # [/INST]{% generation %} {{ content }}{% endgeneration %} </s>: a space token between answer and end
    ids, labels = torch.tensor([5, 6, 7, 8, 3, 1]), torch.tensor([-100, -100, 7, 8, -100, -100])
    (finding,) = check_labels(ids, labels, end_ids=[1])
    assert (finding.tag, finding.positions) == ("end-not-trained", (5,))
    assert "put it inside {% generation %}" in finding and "if pad = end, mask padding by attention_mask" in finding


def test_a_masked_hole_inside_one_answer_is_not_a_missing_end():
    ids = torch.tensor([5, 6, 7, 11, 12, 4, 1])  # 11 12: a tool's output inside the answer, not trained
    assert check_labels(ids, torch.tensor([-100, -100, 7, -100, -100, 4, 1]), end_ids=[1]) == []


def test_a_turn_without_an_end_before_the_next_header_is_no_end():
    ids = torch.tensor([5, 2, 7, 8, 5, 2, 9, 1])  # 2 = a header in never_train_ids: a new turn, not a hole
    (finding,) = check_labels(ids, torch.tensor([-100, -100, 7, 8, -100, -100, 9, 1]), end_ids=[1], never_train_ids=[2])
    assert (finding.tag, finding.positions) == ("no-end", (3,))


def test_the_newline_after_a_masked_end_is_not_reported_as_a_second_problem():
    # full-text labels with pad = EOS masked by value: the `\n` after each masked end is trained alone
    ids = torch.tensor([[3, 5, 6, 1, 4, 3, 7, 8, 1, 4, 1, 1]])
    mask = torch.tensor([[1] * 10 + [0, 0]])
    labels = ids.masked_fill(ids == 1, -100)
    assert [(f.tag, f.positions) for f in check_labels(ids, labels, mask, end_ids=[1])] == [("end-not-trained", (3, 8))]


def test_end_ids_that_name_no_token_of_the_template_give_no_end_on_every_row():
    ids, labels, mask = sound()
    findings = check_labels(ids, labels, mask, end_ids=[19])  # say, a base model's EOS the template never writes
    assert tags(findings) == ["no-end", "no-end"]


def test_a_trained_pad_is_reported_as_padding_not_also_as_a_span_without_an_end():
    ids, labels, mask = sound()
    labels[1, 6] = 0  # one pad position trained, apart from the answer: a one-token span
    assert tags(check_labels(ids, labels, mask, **OPTIONS)) == ["pad-kept", "never-train"]


def test_a_trained_header_alone_is_reported_once_as_never_train():
    ids, labels, mask = sound()
    labels[0, 3:5] = torch.tensor([HEADER, -100])  # a template token trained apart from the answer
    assert tags(check_labels(ids, labels, mask, **OPTIONS)) == ["never-train"]


def test_a_span_cut_before_its_end_is_still_no_end_when_it_also_trains_a_pad():
    ids, labels, mask = sound()
    ids[1, 4] = labels[1, 4] = 11  # the answer 10 11 cut before its end ...
    labels[1, 5] = 0  # ... and a pad after it trained: the span 10 11 pad still has no end
    assert tags(check_labels(ids, labels, mask, **OPTIONS)) == ["pad-kept", "never-train", "no-end"]


# --- every input id (H3), packed documents (M6), span starts (M7) ---------------------------------------


def test_an_input_id_outside_the_embedding_is_found_at_padding_positions_too():
    ids, labels, mask = sound()
    ids[1, 5:] = V  # tokenizer.add_special_tokens({"pad_token": "[PAD]"}) without resize_token_embeddings
    (finding,) = check_labels(ids, labels, mask, **OPTIONS)
    assert (finding.tag, finding.row, finding.positions, finding.ids) == ("input-out-of-range", 1, (5, 6), (V,))
    assert "resize_token_embeddings" in finding


def test_packed_documents_are_judged_one_by_one():
    ids = torch.tensor([[2, 5, 7, 1, 2, 5, 6, 2, 6, 8, 9]])  # three documents: the second is all prompt
    pos = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3]])
    labels = torch.tensor([[-100, -100, 7, 1, -100, -100, -100, -100, -100, 8, 9]])
    findings = check_labels(ids, labels, position_ids=pos, **OPTIONS)
    assert [(f.tag, f.positions) for f in findings] == [("no-target", (4, 5, 6)), ("no-end", (10,))]
    assert findings[0].startswith("[no-target] row 0, t=4..6: ")
    assert tags(check_labels(ids, labels, **OPTIONS)) == ["no-end"]  # one document as far as it can tell


def test_a_label_where_a_packed_document_starts_is_a_cross_document_target():
    ids = torch.tensor([[5, 7, 1, 5, 8, 1]])
    pos = torch.tensor([[0, 1, 2, 0, 1, 2]])
    labels = ids.clone()  # hand-written packing: the label at t=3 is predicted from the first document
    (finding,) = check_labels(ids, labels, position_ids=pos, end_ids=[1])
    assert (finding.tag, finding.positions) == ("cross-doc", (3,))


def chats(starts):
    """Rows `9 H 5 1 | 3 H 2 answer 1`: two turns, the second trained from the given start."""
    ids = torch.tensor([[9, 4, 5, 1, 3, 4, 2, 10 + k, 11, 1] for k in range(len(starts))])
    labels = torch.full_like(ids, -100)
    for row, start in enumerate(starts):
        labels[row, start:] = ids[row, start:]
    return ids, labels


@pytest.mark.parametrize("start, where", [(6, "early"), (8, "late")])
def test_an_answer_that_starts_a_token_off_the_others_header_is_flagged(start, where):
    ids, labels = chats([7, 7, start, 7])
    (finding,) = check_labels(ids, labels, end_ids=[1])
    assert (finding.tag, finding.row, finding.positions) == ("span-start", 2, (start,)), where
    assert f"starts after id {ids[2, start - 1].item()}, but 3 start after ids 4, 2: a header token trained" in finding


def test_answers_that_all_follow_one_header_or_have_no_majority_are_not_flagged():
    assert check_labels(*chats([7, 7, 7]), end_ids=[1]) == []
    assert check_labels(*chats([7, 6]), end_ids=[1]) == []  # one against one: no usual header to compare with


def test_openings_are_judged_only_once_three_and_three_in_four_agree_on_the_header():
    assert check_labels(*chats([7, 7, 8]), end_ids=[1]) == []  # 2 agree: too few
    assert tags(check_labels(*chats([7, 7, 7, 8]), end_ids=[1])) == ["span-start"]  # 3 of 4
    assert check_labels(*chats([7, 7, 7, 8, 6]), end_ids=[1]) == []  # 3 of 5: no header most answers share


def test_plain_prompt_completion_rows_are_not_compared_however_their_prompts_end():
    """No chat turn (no untrained end id or never_train id before the answer): trl's documentation example, whose
    prompts end in ' is' but one in ' red', the word another completion starts with, gives nothing."""
    ids = torch.tensor([[5, 6, 7, 9, 1], [5, 5, 7, 10, 1], [6, 6, 7, 8, 1], [5, 7, 8, 11, 1]])  # 7 ' is', 8 ' red'
    labels = torch.where(torch.arange(5) >= torch.tensor([3, 3, 3, 3])[:, None], ids, -100)
    assert check_labels(ids, labels, end_ids=[1], never_train_ids=[0]) == []


def mistral(starts, left=0):
    """Rows `<s> [INST] q [/INST] answer </s>` (ids 3 4 q 2 11 12 1), no end id before the answer, padded left."""
    ids = torch.tensor([[0] * left + [3, 4, 10 + k, 2, 11, 12, 1] for k in range(len(starts))])
    labels = torch.where(torch.arange(7 + left) >= torch.tensor(starts)[:, None] + left, ids, -100)
    return ids, labels, (ids != 0).long()


def test_a_header_token_in_never_train_ids_opens_a_turn_and_a_leading_bos_does_not():
    ids, labels, mask = mistral([4, 4, 5, 4])  # row 2 starts late
    (finding,) = check_labels(ids, labels, mask, end_ids=[1], never_train_ids=[0, 3, 4, 2])
    assert (finding.tag, finding.row, finding.positions) == ("span-start", 2, (5,))
    assert check_labels(ids, labels, mask, end_ids=[1], never_train_ids=[0]) == []  # no turn known: not compared
    ids, labels, mask = mistral([1, 1, 2, 1], left=2)  # only the BOS listed, after left padding: not a turn
    assert check_labels(ids, labels, mask, end_ids=[1], never_train_ids=[0, 3]) == []


ZIPF = 1 / np.arange(1, 5001) ** 1.1  # word k (id 9 + k) drawn with probability proportional to 1 / k^1.1, as in text


def zipf_batch(rng, size, chat):
    """A batch of prompt-completion rows (a prompt of 5 to 30 Zipf-drawn words, a completion of 3 to 20, then END,
    trained) padded on the right; chat wraps each in turns: HEADER 4 prompt END HEADER 5 6 completion END (user,
    then the assistant's header `5 6`)."""
    lengths = rng.integers([5, 3], [31, 21], size=(size, 2))
    words = iter((rng.choice(len(ZIPF), lengths.sum(), p=ZIPF / ZIPF.sum()) + 10).tolist())
    rows = []
    for n_prompt, n_completion in lengths.tolist():
        prompt, completion = [next(words) for _ in range(n_prompt)], [next(words) for _ in range(n_completion)]
        prompt = [HEADER, 4, *prompt, END, HEADER, 5, 6] if chat else prompt
        rows.append((prompt + completion + [END], [-100] * len(prompt) + completion + [END]))
    width = max(len(ids) for ids, _ in rows)
    ids = torch.tensor([ids + [PAD] * (width - len(ids)) for ids, _ in rows])
    labels = torch.tensor([labels + [-100] * (width - len(labels)) for _, labels in rows])
    return ids, labels, (torch.arange(width) < torch.tensor([len(ids) for ids, _ in rows])[:, None]).long()


@pytest.mark.parametrize("size", [8, 32])
def test_zipf_text_sound_batches_give_nothing_and_one_chat_row_a_token_off_is_named(size):
    """The reviewer's simulation: prompts that end in any word, frequent words often. Plain rows gave a false
    [span-start] in 108 of 300 batches of 8 with the old comparison; now none, and in chats the check still works."""
    rng = np.random.default_rng(size)
    options = dict(end_ids=[END], never_train_ids=[PAD, HEADER], vocab_size=5010)
    for _ in range(25):
        assert check_labels(*zipf_batch(rng, size, chat=False), **options) == []
        ids, labels, mask = zipf_batch(rng, size, chat=True)
        assert check_labels(ids, labels, mask, **options) == []
        row = rng.integers(size)
        start = (labels[row] != -100).nonzero()[0].item()
        off = start + (1 if rng.random() < 0.5 else -1)  # late: its first word masked; early: 6 trained
        labels[row, min(start, off) : max(start, off)] = ids[row, start - 1] if off < start else -100
        (finding,) = check_labels(ids, labels, mask, **options)
        assert (finding.tag, finding.row, finding.positions) == ("span-start", row, (off,))


def test_the_summary_gives_each_rows_trained_share_and_how_its_first_span_opens():
    ids, labels, mask = sound()
    assert summarize_labels(ids, labels, mask) == [
        "row 0: 3 of 7 real tokens trained (43%) in 1 span(s); the first opens 6 2 [7] [8]",
        "row 1: 2 of 5 real tokens trained (40%) in 1 span(s); the first opens 9 2 [10] [1]",
    ]
    assert summarize_labels(ids, ids, mask)[1].startswith("row 1: 4 of 5 real tokens trained (80%)")


# --- readable at scale (M9), one line in a pipeline (M11) -----------------------------------------------


def test_many_findings_of_one_kind_are_capped_with_a_count_that_keeps_the_rows():
    ids = torch.tensor([[2, 5, 6, 1]] * 45)
    findings = check_labels(ids, torch.full_like(ids, -100), end_ids=[1])
    assert len(findings) == label_checks.SHOWN + 1
    assert findings[-1] == f"[no-target] … and {45 - label_checks.SHOWN} more rows like these"
    assert findings[-1].rows == tuple(range(label_checks.SHOWN, 45))


def test_positions_and_ids_are_capped_within_a_line_but_kept_whole_on_the_finding():
    ids = torch.arange(3, 203).remainder(17) + 3  # 200 tokens, words only
    labels = torch.full_like(ids, -100)
    labels[1::2] = 100 + torch.arange(100)  # 100 separate trained positions, each out of range
    (finding,) = check_labels(ids, labels, vocab_size=50, end_ids=[])
    assert len(finding) < 400 and "… (+92 more)" in finding
    assert len(finding.positions) == 100 and len(finding.ids) == 100


def test_check_batch_takes_what_a_collator_returns_and_ignores_other_keys():
    ids, labels, mask = sound()
    batch = dict(input_ids=ids, labels=labels, attention_mask=mask, token_type_ids=ids * 0, cu_seq_lens_q=[0, 7])
    assert check_batch(batch, **OPTIONS) == []
    batch["labels"] = broken("end-not-trained")[1]
    assert tags(check_batch(batch, **OPTIONS)) == ["end-not-trained"]


def test_check_batch_reads_a_batch_encoding():
    from transformers import BatchEncoding

    ids, labels, mask = sound()
    assert check_batch(BatchEncoding(dict(input_ids=ids, labels=labels, attention_mask=mask)), **OPTIONS) == []


def test_a_checking_collator_checks_the_first_batches_only():
    ids, labels, mask, *_ = broken("end-not-trained")
    collated = []
    collate = checking_collator(
        lambda examples: collated.append(examples) or dict(input_ids=ids, labels=labels), first=1, **OPTIONS
    )
    with pytest.raises(ValueError, match=r"label_checks found problems in a batch:\n\[end-not-trained\] row 0"):
        collate(["first"])
    assert collate(["second"])["labels"] is labels and collated == [["first"], ["second"]]


def collate_broken(examples):
    """A collator that DataLoader workers can import: every batch has an untrained end id."""
    ids, labels, mask, *_ = broken("end-not-trained")
    return dict(input_ids=ids, labels=labels, attention_mask=mask)


def test_a_checking_collator_pickles_and_each_copy_checks_its_own_first_batches():
    """DataLoader workers started by spawn (macOS) or forkserver (Linux from Python 3.14) get a pickled copy."""
    collate = checking_collator(collate_broken, first=1, **OPTIONS)
    copy_ = pickle.loads(pickle.dumps(collate))
    for each in (collate, copy_):  # each copy counts its own batches, as each worker does
        with pytest.raises(ValueError, match=r"\[end-not-trained\] row 0"):
            each(["first"])
        assert each(["second"])["labels"] is not None


def test_a_4d_mask_gives_the_findings_of_its_2d_mask_and_position_ids():
    """Notebook 06's packing mask, (B, 1, T, T): boolean or 1 where a query may attend, or additive (0 there)."""
    ids, labels, mask = sound()
    allowed = (mask[:, None, :, None] * mask[:, None, None, :]).bool() & torch.ones(7, 7, dtype=torch.bool).tril()
    additive = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
    trained_pad = labels.clone()
    trained_pad[1, 5] = 0  # padding trained: [pad-kept], and the pad id is in never_train_ids
    for four in (allowed, allowed.long(), additive):
        assert check_batch(dict(input_ids=ids, labels=labels, attention_mask=four), **OPTIONS) == []
        assert check_labels(ids, trained_pad, four, **OPTIONS) == check_labels(ids, trained_pad, mask, **OPTIONS)
    ids = torch.tensor([[5, 7, 1, 5, 8, 1]])  # two documents packed in one row, labels copied from the ids
    document = torch.tensor([0, 0, 0, 1, 1, 1])
    block = (document[:, None] == document[None, :]) & torch.ones(6, 6, dtype=torch.bool).tril()
    by_mask = check_labels(ids, ids.clone(), block[None, None], end_ids=[1])
    assert by_mask == check_labels(ids, ids.clone(), position_ids=torch.tensor([[0, 1, 2, 0, 1, 2]]), end_ids=[1])
    assert tags(by_mask) == ["cross-doc"]


def test_decode_adds_each_ids_text():
    ids, labels, mask, options, *_ = broken("never-train")
    words = {2: "<|im_start|>"}
    (finding,) = check_labels(ids, labels, mask, decode=lambda ids: "".join(words[i] for i in ids), **options)
    assert "trains id 2 '<|im_start|>' from never_train_ids" in finding


def test_the_arguments_are_not_changed():
    ids, labels, mask = sound()
    before = [t.clone() for t in (ids, labels, mask)]
    check_labels(ids, labels, mask, **OPTIONS)
    summarize_labels(ids, labels, mask)
    assert all(torch.equal(a, b) for a, b in zip(before, (ids, labels, mask), strict=True))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda i, y, m: check_labels(i.tolist(), y, end_ids=[1]),
            TypeError,
            "input_ids must be a torch.Tensor, got list",
        ),  # fmt: skip
        (
            lambda i, y, m: check_labels(i, y.float(), end_ids=[1]),
            TypeError,
            "labels must hold integer ids, got a torch.float32",
        ),  # fmt: skip
        (
            lambda i, y, m: check_labels(i.bool(), y, end_ids=[1]),
            TypeError,
            "input_ids must hold integer ids, got a torch.bool",
        ),  # fmt: skip
        (
            lambda i, y, m: check_labels(i[None], y[None], end_ids=[1]),
            ValueError,
            r"input_ids must be \(B, T\) or \(T,\), T >= 1, .* got \(1, 2, 7\)",
        ),  # fmt: skip
        (lambda i, y, m: check_labels(i[:, :0], y[:, :0], end_ids=[1]), ValueError, r"T >= 1.*got \(2, 0\)"),
        (
            lambda i, y, m: check_labels(i, y[:, :5], end_ids=[1]),
            ValueError,
            r"labels must be .* as input_ids \(2, 7\): got \(2, 5\)",
        ),  # fmt: skip
        (
            lambda i, y, m: check_labels(i, y, m[:1], end_ids=[1]),
            ValueError,
            r"attention_mask must be .*got \(1, 7\)",
        ),  # fmt: skip
        (
            lambda i, y, m: check_labels(i, y, position_ids=m.float(), end_ids=[1]),
            TypeError,
            "position_ids must hold integer ids",
        ),  # fmt: skip
        (
            lambda i, y, m: check_labels(i, y, m, end_ids=[1], vocab_size=0),
            ValueError,
            "vocab_size must be a positive int or None",
        ),  # fmt: skip
        (
            lambda i, y, m: check_labels(i, y, m, end_ids=[1], vocab_size=20.0),
            TypeError,
            "vocab_size must be an int, got 20.0",
        ),  # fmt: skip
        (
            lambda i, y, m: check_labels(i, y, m, end_ids="</s>"),
            TypeError,
            "end_ids must be a list of int ids, got str",
        ),  # fmt: skip
        (lambda i, y, m: check_labels(i, y, m, end_ids=1), TypeError, "end_ids must be a list of int ids, got int"),
        (
            lambda i, y, m: check_labels(i, y, end_ids=[1], never_train_ids=[0.5]),
            TypeError,
            "each of never_train_ids must be an int, got 0.5",
        ),  # fmt: skip
        (
            lambda i, y, m: check_labels(i, y, end_ids=[1], decode="text"),
            TypeError,
            "decode must be a function from a list of ids to text",
        ),  # fmt: skip
        (
            lambda i, y, m: check_labels(i, y, end_ids=[1], ignore_index=None),
            TypeError,
            "ignore_index must be an int",
        ),  # fmt: skip
        (
            lambda i, y, m: check_batch([i, y], end_ids=[1]),
            TypeError,
            "batch must be a dict .* with input_ids and labels, got a list",
        ),  # fmt: skip
        (lambda i, y, m: check_batch(dict(input_ids=i), end_ids=[1]), TypeError, r"got keys \['input_ids'\]"),
        (lambda i, y, m: checking_collator(None, end_ids=[1]), TypeError, "checking_collator takes a collator"),
        (lambda i, y, m: checking_collator(list), TypeError, r"and end_ids=\[...\]; got a type and \[\]"),
        (lambda i, y, m: show_labels(i, y, row=2), ValueError, "row must be an int index into 2 rows, got 2"),
        (lambda i, y, m: show_labels(i, y, row=True), TypeError, "row must be an int, got True"),
        (lambda i, y, m: show_labels(i, y, decode="text"), TypeError, "decode must be a function from a list of ids"),
        (lambda i, y, m: show_labels(i, y[:, 1:]), ValueError, r"labels must be .* got \(2, 6\)"),
        (lambda i, y, m: show_labels(i, y, sep=1), TypeError, "sep must be a str or None, got int"),
        (lambda i, y, m: summarize_labels(i, y, m[:, :3]), ValueError, r"attention_mask must be .* got \(2, 3\)"),
        (
            lambda i, y, m: check_labels(i, y, m[:, None, :, None].expand(2, 1, 7, 6), end_ids=[1]),
            ValueError,
            r"attention_mask must be .* as input_ids \(2, 7\), or \(B, 1, T, T\): got \(2, 1, 7, 6\)",
        ),  # fmt: skip
    ],
    ids=lambda value: "" if callable(value) or isinstance(value, type) else value[:40],
)
def test_a_wrong_call_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call(*sound())


def test_ids_may_be_tensors_numpy_integers_or_int32():
    ids, labels, mask = sound()
    options = dict(end_ids=torch.tensor([END]), never_train_ids=(np.int64(PAD),), vocab_size=np.int64(V))
    assert check_labels(ids.int(), labels, mask.bool(), **options) == []
    assert show_labels(ids, labels, row=np.int64(1)) == "2 9 2 [10] [1] 0 0"


def test_show_labels_marks_the_trained_tokens_and_a_label_that_differs():
    ids, labels, _ = sound()
    assert show_labels(ids, labels, row=1) == "2 9 2 [10] [1] 0 0"
    words = {0: "<pad>", 1: "<end>", 2: "\n>", 7: " Paris", 8: " is"}
    labels[0, 5] = 1
    shown = show_labels(ids, labels, decode=lambda ids: "".join(words.get(i, f"<{i}>") for i in ids))
    assert shown == "\\n><5><6>\\n>[ Paris][ is→<end>][<end>]"


def test_show_labels_puts_sep_between_tokens():
    ids, labels, _ = sound()
    words = {2: "<h>", 9: "how", 10: "fine", 1: "<end>", 0: "<pad>"}
    text = lambda ids: "".join(words[i] for i in ids)  # noqa: E731
    assert show_labels(ids, labels, row=1, decode=text) == "<h>how<h>[fine][<end>]<pad><pad>"
    assert show_labels(ids, labels, row=1, decode=text, sep=" ") == "<h> how <h> [fine] [<end>] <pad> <pad>"
    assert show_labels(ids, labels, row=1, sep="|") == "2|9|2|[10]|[1]|0|0"


def test_the_docstring_examples_run():
    failures, tried = doctest.testmod(label_checks)
    assert tried >= 10 and failures == 0


def test_the_module_needs_torch_and_the_standard_library_only():
    tree = ast.parse(pathlib.Path(label_checks.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) == {"torch"}


def test_a_copy_of_the_file_works_alone_in_another_folder(tmp_path):
    shutil.copy(label_checks.__file__, tmp_path / "label_checks.py")
    script = tmp_path / "train.py"
    script.write_text(
        "import pathlib, torch, label_checks\n"
        "assert pathlib.Path(label_checks.__file__).parent == pathlib.Path(__file__).parent\n"
        "ids = torch.tensor([[5, 6, 7, 1]])\n"
        "print(label_checks.check_labels(ids, torch.tensor([[-100, -100, 7, -100]]), end_ids=[1])[0][:23])\n",
        encoding="utf-8",
    )
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[end-not-trained] row 0\n"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_batch_on_a_gpu_gives_the_same_findings():  # pragma: no cover - runs where a GPU is present
    for fault in [*FAULTS, "input-out-of-range"]:
        ids, labels, mask, options, *_ = broken(fault)
        on_cpu = check_labels(ids, labels, mask, **options)
        assert check_labels(ids.cuda(), labels.cuda(), mask.cuda(), **options) == on_cpu != []
    ids = torch.tensor([[5, 6, 7, 1, 5, 8, 9, 1, 1, 1]])
    pos = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3, 0, 0]])
    labels = torch.tensor([[-100, -100, 7, -100, -100, -100, 9, 1, -100, -100]])
    assert check_labels(ids.cuda(), labels.cuda(), position_ids=pos.cuda(), end_ids=[1]) == check_labels(
        ids, labels, position_ids=pos, end_ids=[1]
    )


# --- property: sound batches pass; one planted fault is named where it was planted -------------------

WORDS = st.integers(3, V - 1)


@st.composite
def batches(draw):
    """A batch of chats, each row one or more turns: a prompt (words, then HEADER; not trained) and an answer
    ending in END (trained). Padded on the right with PAD, or with END (pad = EOS, with or without its mask),
    or packed into one padding-free row as trl does."""
    layout = draw(st.sampled_from(["pad", "pad=end", "pad=end, no mask", "padding-free"]))
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        ids, labels = [], []
        for _ in range(draw(st.integers(1, 3))):
            prompt = draw(st.lists(WORDS, min_size=1, max_size=3)) + [HEADER]
            answer = draw(st.lists(WORDS, min_size=0, max_size=3)) + [END]
            ids, labels = ids + prompt + answer, labels + [-100] * len(prompt) + answer
        rows.append((ids, labels))
    pad = PAD if layout == "pad" else END
    if layout == "padding-free":  # one row, positions restarting per example, padded to a multiple of 8
        ids = [i for row, _ in rows for i in row]
        fill = -len(ids) % 8
        position = [t for row, _ in rows for t in range(len(row))] + [0] * fill
        labels = [-100 if p == 0 else y for p, y in zip(position, [y for _, row in rows for y in row], strict=False)]
        batch = dict(input_ids=[ids + [pad] * fill], labels=[labels + [-100] * fill], position_ids=[position])
    else:
        width = max(len(ids) for ids, _ in rows) + draw(st.integers(0, 2))
        batch = {key: [] for key in ("input_ids", "labels", "attention_mask")}
        for ids, labels in rows:
            fill = width - len(ids)
            batch["input_ids"].append(ids + [pad] * fill)
            batch["labels"].append(labels + [-100] * fill)
            batch["attention_mask"].append([1] * len(ids) + [0] * fill)
        if layout == "pad=end, no mask":
            del batch["attention_mask"]
    options = OPTIONS if pad == PAD else EOS_PADDED
    return {key: torch.tensor(value) for key, value in batch.items()}, options, layout


@given(batches())
def test_any_sound_batch_has_no_finding(drawn):
    batch, options, _ = drawn
    assert check_batch(batch, **options) == []


PLANTED = ["pad-kept", "end-not-trained", "never-train", "out-of-range", "input-out-of-range", "shifted", "no-end"]


@given(batches(), st.sampled_from(PLANTED), st.data())
def test_one_planted_fault_is_named_at_its_row_and_position(drawn, fault, data):
    batch, options, layout = drawn
    ids, labels = batch["input_ids"], batch["labels"]
    real = batch["attention_mask"] == 1 if "attention_mask" in batch else torch.ones_like(ids, dtype=torch.bool)
    if "position_ids" in batch:
        padding = (batch["position_ids"][0].flip(0) == 0).long().cumprod(0).sum()  # trl's trailing zeros
        real = (torch.arange(ids.shape[1]) < ids.shape[1] - padding)[None]
    trained = labels != -100
    trained[:, 0] = False
    after_trained = torch.zeros_like(trained)
    after_trained[:, 1:] = trained[:, :-1]
    if fault == "pad-kept":
        spots = (~real).nonzero().tolist()
    elif fault in ("end-not-trained", "no-end"):  # an answer's END, with a trained word before it
        spots = (trained & (ids == END) & after_trained).nonzero().tolist()
        if fault == "no-end" and layout == "pad=end, no mask":  # then followed by pad = EOS: it looks masked
            spots = [(b, t) for b, t in spots if t + 1 < ids.shape[1] and ids[b, t + 1] != END]
    elif fault == "input-out-of-range":
        spots = torch.ones_like(trained).nonzero().tolist()
    else:
        spots = (trained & (ids != END)).nonzero().tolist()
    if not spots:
        return
    b, t = data.draw(st.sampled_from(spots))
    if fault == "pad-kept":
        labels[b, t] = ids[b, t]
    elif fault == "end-not-trained":
        labels[b, t] = -100
    elif fault == "no-end":  # the answer cut just before its end
        ids[b, t] = labels[b, t] = 3
    elif fault == "never-train":
        ids[b, t] = labels[b, t] = HEADER
    elif fault == "out-of-range":
        labels[b, t] = -1
    elif fault == "input-out-of-range":
        ids[b, t] = V
    else:
        labels[b, t] = 3 if labels[b, t] != 3 else 4
    findings = check_batch(batch, **options)
    assert (b, t) in {(f.row, u) for f in findings if f.tag == fault for u in f.positions}, findings


# --- the review of the take-home file: what a shared shift, a wrong end id or a text-token pad look like ------


def test_a_shift_every_row_shares_passes_the_checks_and_shows_in_the_summarys_openings():
    """The limitation the docstrings state next to checking_collator: one token early or late in every row gives
    no finding, and summarize_labels' opening shows it (the header's 2 in brackets, or the answer's first token out)."""
    openings = {}
    for name, start in (("sound", 7), ("early", 6), ("late", 8)):
        ids, labels = chats([start] * 4)
        assert check_labels(ids, labels, end_ids=[1]) == [], name
        openings[name] = summarize_labels(ids, labels)[0].split("opens ")[1]
    assert openings == {"sound": "4 2 [10] [11]", "early": "3 4 [2] [10]", "late": "2 10 [11] [1]"}


@pytest.mark.parametrize("start, positions", [(6, (6,)), (8, (8,)), (5, (5,)), (4, (4,))])
def test_given_header_ids_a_shift_every_row_shares_is_flagged_in_every_row(start, positions):
    """header_ids 3 4 2 (the generation prompt): answers that start inside them (6: the 2 trained; 5, 4: more of
    the header) or one after them (8) are flagged in every row, and few rows are enough; at 7 they are sound."""
    assert check_labels(*chats([7, 7]), end_ids=[1], header_ids=[3, 4, 2]) == []
    findings = check_labels(*chats([start] * 2), end_ids=[1], header_ids=[3, 4, 2])
    assert [(f.tag, f.row, f.positions) for f in findings] == [("span-start", row, positions) for row in (0, 1)]
    assert "but answers follow header_ids 3, 4, 2: a header token trained, or the answer's first token" in findings[0]
    assert check_labels(*chats([start] * 2), end_ids=[1]) == []  # without them: rows that agree pass


def test_header_ids_that_are_plain_text_check_answers_that_open_no_turn():
    """A third practitioner's miss: with a plain-text header (Vicuna's `ASSISTANT:`, Alpaca's `### Response:`)
    no end id or never_train id comes before an answer, so it opens no turn; an answer after 2 or more untrained
    tokens is checked against header_ids too, and wrong header_ids are named there as well."""
    ids = torch.tensor([[2, 5, 6, 7, 8, 9, 1], [2, 6, 5, 7, 9, 8, 1]])  # 2 BOS, 7 the text header, 1 the end
    sound = torch.tensor([[-100] * 4 + [8, 9, 1], [-100] * 4 + [9, 8, 1]])
    late = torch.tensor([[-100] * 5 + [9, 1], [-100] * 5 + [8, 1]])  # every answer's first token masked
    checks = dict(end_ids=[1], never_train_ids=[2])
    assert check_labels(ids, sound, **checks, header_ids=[7]) == [] and check_labels(ids, late, **checks) == []
    assert [(f.tag, f.row, f.positions) for f in check_labels(ids, late, **checks, header_ids=[7])] == [
        ("span-start", 0, (5,)),
        ("span-start", 1, (5,)),
    ]
    (wrong, _) = check_labels(ids, sound, **checks, header_ids=[99, 7])
    assert "header_ids 99, 7 come right before no answer" in wrong
    whole = torch.where(ids == 2, -100, ids)  # every token trained from the first on: no prompt, nothing compared
    assert "span-start" not in {f.tag for f in check_labels(ids, whole, **checks, header_ids=[7])}


def test_a_span_of_two_messages_whose_last_end_is_masked_is_end_not_trained():
    """A practitioner's miss: one trained stretch holds a message, its end (1), and a second message whose own end
    is masked, or cut away; that the stretch trains an end id must not hide it. Up to AFTER_END (3) tokens after a
    trained end are what a template writes there (a newline, an EOS), not a message."""
    ids = torch.tensor([[5, 6, 1, 3, 7, 8, 9, 1]])  # 3 7: the second message's header, 8 9 its text
    (finding,) = check_labels(ids, torch.tensor([[-100, 6, 1, 3, 7, 8, 9, -100]]), end_ids=[1])
    assert (finding.tag, finding.positions) == ("end-not-trained", (7,))
    assert check_labels(ids, torch.tensor([[-100, 6, 1, 3, 7, 8, 9, 1]]), end_ids=[1]) == []
    cut = check_labels(ids[:, :7], torch.tensor([[-100, 6, 1, 3, 7, 8, 9]]), end_ids=[1])  # the second one cut
    assert [(f.tag, f.positions) for f in cut] == [("no-end", (6,))]
    tail = torch.tensor([[5, 6, 1, 9, 2, 0, 0]])  # Phi-3's `\n<|endoftext|>` (9 2) trained after the end, then pads
    assert (
        check_labels(
            tail, torch.tensor([[-100, 6, 1, 9, 2, -100, -100]]), torch.tensor([[1] * 5 + [0] * 2]), end_ids=[1]
        )
        == []
    )
    padded = torch.tensor([[5, 6, 1, 9, 1, 1]])  # 9: the newline after the end; then two pads, pad = end = 1
    assert check_labels(padded, torch.tensor([[-100, 6, 1, 9, -100, -100]]), end_ids=[1]) == []


def test_never_train_advice_names_the_answer_mask_and_a_token_the_model_writes_itself():
    ids = torch.tensor([[3, 9, 10, 4, 11, 1]])  # every token trained, the header 3 and 4 too
    (finding,) = check_labels(ids, ids.clone(), end_ids=[1], never_train_ids=[3, 4])
    assert "restore the answer mask" in finding and "gpt-oss's <|start|>" in finding


def two_turns(*spans):
    """Mistral-like rows `<s> [INST] q [/INST] a </s> [INST] q [/INST] a </s>` (3 4 q 2 11 12 1 4 q 2 13 1),
    trained over the given [first, last) spans."""
    ids = torch.tensor([[3, 4, 10 + k, 2, 11, 12, 1, 4, 10 + k, 2, 13, 1] for k in range(3)])
    labels = torch.full_like(ids, -100)
    for first, last in spans:
        labels[:, first:last] = ids[:, first:last]
    return ids, labels


@pytest.mark.parametrize(
    "spans, where",
    [([(3, 7), (9, 12)], "early: each [/INST] trained"), ([(5, 8), (11, 12)], "late: the [INST] after </s> trained")],
)
def test_a_never_train_id_at_the_edge_of_every_answer_is_named_as_a_span_one_token_off(spans, where):
    assert check_labels(*two_turns((4, 7), (10, 12)), end_ids=[1], never_train_ids=[0, 3, 4, 2]) == []  # sound
    ids, labels = two_turns(*spans)
    findings = check_labels(ids, labels, end_ids=[1], never_train_ids=[0, 3, 4, 2])
    assert tags(findings) == ["never-train"] * 3, where
    assert "is the trained span one token off (a header token trained, or the first answer" in findings[0], where


def test_a_never_train_id_inside_a_trained_stretch_keeps_the_set_to_minus_100_message():
    ids, labels, mask = sound()
    findings = check_labels(ids, ids.clone(), mask, **OPTIONS)  # labels = input_ids: headers trained mid-stretch
    never = [f for f in findings if f.tag == "never-train"]
    assert never and all("set those labels to -100" in f and "one token off" not in f for f in never)
    labels[0, 3:5] = torch.tensor([HEADER, -100])  # a header trained alone, apart from any answer
    (finding,) = check_labels(ids, labels, mask, **OPTIONS)
    assert "set those labels to -100" in finding


def test_an_end_id_that_is_not_the_templates_end_of_turn_is_named_as_a_possible_cause():
    ids, labels, mask = sound()
    labels[0, 6] = -100
    (finding,) = check_labels(ids, labels, mask, **OPTIONS)
    assert finding.tag == "end-not-trained" and "or end_ids does not name your end-of-turn token?" in finding


def test_a_tokenizer_passed_as_decode_is_refused_and_its_decode_method_accepted():
    class Tokenizer:  # callable, as transformers' tokenizers are: text -> ids
        def __call__(self, text):
            return [ord(c) for c in text]

        def decode(self, ids):
            return "".join(chr(97 + i) for i in ids)

    ids, labels, mask = sound()
    with pytest.raises(TypeError, match="decode must be a function such as tokenizer.decode, not the tokenizer"):
        check_labels(ids, labels, mask, decode=Tokenizer(), **OPTIONS)
    with pytest.raises(TypeError, match="not the tokenizer"):
        show_labels(ids, labels, decode=Tokenizer())
    assert check_labels(ids, labels, mask, decode=Tokenizer().decode, **OPTIONS) == []


def test_a_pad_id_that_is_a_text_token_masked_by_value_is_invisible_as_the_docstring_says():
    ids, labels, mask = sound()
    ids[ids == PAD], ids[0, 5] = 7, 7  # the pad id is word 7, which answers also hold
    labels = torch.where(labels != -100, ids, -100)
    masked = labels.masked_fill(labels == 7, -100)  # pad masked by value: holes in the answers
    assert (masked != labels).any() and check_labels(ids, masked, mask, end_ids=[END], never_train_ids=[HEADER]) == []
    assert "pad id that is also a text token masked by value" in label_checks.__doc__.replace("\n", " ")
