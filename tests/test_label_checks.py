"""label_checks finds each planted problem by its tag and place, says nothing about a sound batch,
raises only when it is called wrongly, and works when copied alone into another project.

The batches use ids 0 = pad, 1 = end of turn, 2 = a template header, 3.. = words; vocabulary of 20.
"""

import ast
import doctest
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import label_checks
from label_checks import check_labels, show_labels

PAD, END, HEADER, V = 0, 1, 2, 20
OPTIONS = dict(vocab_size=V, end_ids=[END], never_train_ids=[PAD, HEADER])


def sound():
    """Two chats: header, prompt, answer ending in END (trained), then padding in row 1."""
    ids = torch.tensor([[2, 5, 6, 2, 7, 8, 1], [2, 9, 2, 10, 1, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]])
    labels = torch.tensor([[-100, -100, -100, -100, 7, 8, 1], [-100, -100, -100, 10, 1, -100, -100]])
    return ids, labels, mask


def tags(findings):
    return [re.match(r"\[([a-z-]+)\]", line).group(1) for line in findings]


def test_a_sound_batch_has_no_finding():
    assert check_labels(*sound(), **OPTIONS) == []


def test_a_single_row_of_shape_t_is_checked_as_row_0():
    ids, labels, mask = sound()
    assert check_labels(ids[0], labels[0], mask[0], **OPTIONS) == []
    assert check_labels(ids[0], torch.full_like(ids[0], -100)) == [
        "[no-target] row 0: no trained target after the shift; the row teaches nothing, a batch of such rows gives "
        "nan: drop it, or cut the prompt rather than the answer"
    ]


def test_the_first_label_is_dropped_by_the_shift_and_never_judged():
    ids, labels, mask = sound()
    labels[:, 0] = -7  # never a target: the model shifts it away
    assert check_labels(ids, labels, mask, **OPTIONS) == []


def broken(fault):
    """A sound batch with one planted fault; returns (ids, labels, mask, options, expected 'row r, t=...')."""
    ids, labels, mask = sound()
    options = dict(OPTIONS)
    if fault == "no-target":  # truncation cut the whole answer
        labels[1] = -100
        return ids, labels, mask, options, "row 1"
    if fault == "pad-kept":  # labels copied from input_ids, padding included
        labels[1, 5:] = 0
        options["never_train_ids"] = [HEADER]
        return ids, labels, mask, options, "row 1, t=5..6"
    if fault == "shifted":  # notebook 02's targets passed as labels
        labels[0, 4:6] = torch.tensor([8, 1])
        labels[0, 6] = -100
        options["end_ids"] = []
        return ids, labels, mask, options, "row 0, t=4..5"
    if fault == "never-train":  # a header inside the trained span
        labels[0, 3] = HEADER
        return ids, labels, mask, options, "row 0, t=3"
    if fault == "end-not-trained":  # the stop token outside {% generation %}
        labels[0, 6] = -100
        return ids, labels, mask, options, "row 0, t=6"
    if fault == "no-end":  # an answer cut by truncation
        ids, labels, mask = ids[:, :5], labels[:, :5], mask[:, :5]
        return ids, labels, mask, options, "row 0, t=4"
    if fault == "out-of-range":  # the -1 trick with the default ignore_index
        labels[1, 3] = -1
        return ids, labels, mask, options, "row 1, t=3"
    raise AssertionError(fault)


FAULTS = ["no-target", "pad-kept", "shifted", "never-train", "end-not-trained", "no-end", "out-of-range"]


@pytest.mark.parametrize("fault", FAULTS)
def test_each_planted_fault_is_found_by_its_tag_at_its_place(fault):
    ids, labels, mask, options, where = broken(fault)
    findings = check_labels(ids, labels, mask, **options)
    assert tags(findings) == [fault], findings
    assert findings[0].startswith(f"[{fault}] {where}: "), findings


def test_labels_that_are_not_int64_are_reported_not_refused():
    ids, labels, mask = sound()
    assert tags(check_labels(ids, labels.int(), mask, **OPTIONS)) == ["dtype"]


def test_an_input_id_outside_the_vocabulary_is_out_of_range_but_padding_is_not_judged():
    ids, labels, mask = sound()
    ids[1, 6] = 99  # padding: not attended, not looked at
    assert check_labels(ids, labels, mask, **OPTIONS) == []
    ids[0, 1] = 99
    assert check_labels(ids, labels, mask, **OPTIONS)[0].startswith("[out-of-range] row 0, t=1: id 99 ")


def test_pad_equal_to_end_masked_by_value_loses_the_real_end():
    # DataCollatorForLanguageModeling with pad_token = eos_token: every id 1 became -100
    ids = torch.tensor([[4, 5, 1], [6, 1, 1]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    labels = torch.tensor([[4, 5, -100], [6, -100, -100]])
    findings = check_labels(ids, labels, mask, end_ids=[1])
    assert findings[0].startswith("[no-target] row 1")
    assert findings[1].startswith("[end-not-trained] row 0, t=2: end id 1 ")


def test_a_trained_pad_is_reported_as_padding_not_also_as_a_span_without_an_end():
    ids, labels, mask = sound()
    labels[1, 6] = 0  # one pad position trained, apart from the answer: a one-token span
    assert tags(check_labels(ids, labels, mask, **OPTIONS)) == ["pad-kept", "never-train"]


def test_a_trained_header_alone_is_reported_once_as_never_train():
    ids, labels, mask = sound()
    labels[0, 3:5] = torch.tensor([HEADER, -100])  # a template token trained apart from the answer
    assert tags(check_labels(ids, labels, mask, **OPTIONS)) == ["never-train"]


def test_end_ids_that_name_no_token_of_the_template_give_no_end_on_every_row():
    ids, labels, mask = sound()
    findings = check_labels(ids, labels, mask, end_ids=[19])  # say, a base model's EOS the template never writes
    assert tags(findings) == ["no-end", "no-end"]


def test_a_span_cut_before_its_end_is_still_no_end_when_it_also_trains_a_pad():
    ids, labels, mask = sound()
    ids[1, 4] = labels[1, 4] = 11  # the answer 10 11 cut before its end ...
    labels[1, 5] = 0  # ... and a pad after it trained: the span 10 11 pad still has no end
    assert tags(check_labels(ids, labels, mask, **OPTIONS)) == ["pad-kept", "never-train", "no-end"]


def test_many_findings_of_one_kind_are_capped_with_a_count():
    ids = torch.tensor([[2, 5, 6, 1]] * 45)
    findings = check_labels(ids, torch.full_like(ids, -100))
    assert len(findings) == label_checks.SHOWN + 1
    assert findings[-1] == f"[no-target] … and {45 - label_checks.SHOWN} more rows like these"


def test_the_arguments_are_not_changed():
    ids, labels, mask = sound()
    before = [t.clone() for t in (ids, labels, mask)]
    check_labels(ids, labels, mask, **OPTIONS)
    assert all(torch.equal(a, b) for a, b in zip(before, (ids, labels, mask), strict=True))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda i, y, m: check_labels(i.tolist(), y), TypeError, "input_ids must be a torch.Tensor, got list"),
        (lambda i, y, m: check_labels(i, y.float()), TypeError, "labels must hold integer ids, got a torch.float32"),
        (lambda i, y, m: check_labels(i.bool(), y), TypeError, "input_ids must hold integer ids, got a torch.bool"),
        (
            lambda i, y, m: check_labels(i[None], y[None]),
            ValueError,
            r"must be \(B, T\) or \(T,\), got shape \(1, 2, 7\)",
        ),
        (
            lambda i, y, m: check_labels(i, y[:, :5]),
            ValueError,
            r"input_ids \(2, 7\) and labels \(2, 5\) must have one",
        ),
        (lambda i, y, m: check_labels(i, y, m[:1]), ValueError, r"attention_mask \(1, 7\) must have the shape"),
        (lambda i, y, m: check_labels(i, y, m, vocab_size=0), ValueError, "vocab_size must be a positive int or None"),
        (lambda i, y, m: check_labels(i, y, m, vocab_size=20.0), ValueError, "vocab_size must be a positive int"),
        (
            lambda i, y, m: check_labels(i, y, m, end_ids="</s>"),
            TypeError,
            "end_ids must be a list of int ids, got str",
        ),
        (lambda i, y, m: check_labels(i, y, m, end_ids=1), TypeError, "end_ids must be a list of int ids, got int"),
        (lambda i, y, m: check_labels(i, y, never_train_ids=[0.5]), TypeError, "never_train_ids must hold int ids"),
        (lambda i, y, m: show_labels(i, y, row=2), ValueError, "row must be an int index into 2 rows, got 2"),
        (lambda i, y, m: show_labels(i, y, decode="text"), TypeError, "decode must be a function from an id to text"),
        (lambda i, y, m: show_labels(i, y[:, 1:]), ValueError, "must have one shape"),
        (lambda i, y, m: show_labels(i, y, sep=1), TypeError, "sep must be a str or None, got int"),
    ],
    ids=lambda value: "" if callable(value) or isinstance(value, type) else value[:40],
)
def test_a_wrong_call_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call(*sound())


def test_ids_may_be_given_as_a_tensor_and_ids_as_int32():
    ids, labels, mask = sound()
    assert check_labels(ids.int(), labels, mask.bool(), end_ids=torch.tensor([END]), never_train_ids=(PAD,)) == []


def test_show_labels_marks_the_trained_tokens_and_a_label_that_differs():
    ids, labels, _ = sound()
    assert show_labels(ids, labels, row=1) == "2 9 2 [10] [1] 0 0"
    words = {0: "<pad>", 1: "<end>", 2: "\n>", 7: " Paris", 8: " is"}
    labels[0, 5] = 1
    shown = show_labels(ids, labels, decode=lambda i: words.get(i, f"<{i}>"))
    assert shown == "\\n><5><6>\\n>[ Paris][ is→<end>][<end>]"


def test_show_labels_puts_sep_between_tokens_for_tokenizers_without_spaces():
    ids, labels, _ = sound()
    words = {2: "<h>", 9: "how", 10: "fine", 1: "<end>", 0: "<pad>"}
    assert show_labels(ids, labels, row=1, decode=words.get) == "<h>how<h>[fine][<end>]<pad><pad>"
    assert show_labels(ids, labels, row=1, decode=words.get, sep=" ") == "<h> how <h> [fine] [<end>] <pad> <pad>"
    assert show_labels(ids, labels, row=1, sep="|") == "2|9|2|[10]|[1]|0|0"


def test_the_docstring_examples_run():
    failures, tried = doctest.testmod(label_checks)
    assert tried >= 6 and failures == 0


def test_the_module_needs_torch_only():
    tree = ast.parse(pathlib.Path(label_checks.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"torch"}


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
    ids, labels, mask, options, _ = broken("end-not-trained")
    on_cpu = check_labels(ids, labels, mask, **options)
    assert check_labels(ids.cuda(), labels.cuda(), mask.cuda(), **options) == on_cpu != []


# --- property: sound batches pass; one planted fault is named where it was planted -------------------


@st.composite
def batches(draw):
    """A padded batch of chats: prompt (not trained), answer ending in END (trained), padding."""
    rows = draw(st.integers(1, 5))
    width = draw(st.integers(4, 12))
    ids = torch.full((rows, width), PAD)
    labels = torch.full((rows, width), -100)
    mask = torch.zeros(rows, width, dtype=torch.long)
    for b in range(rows):
        prompt = draw(st.integers(1, width - 2))
        answer = draw(st.integers(1, width - prompt))  # the answer's last token is END
        words = draw(st.lists(st.integers(3, V - 1), min_size=prompt + answer - 1, max_size=prompt + answer - 1))
        ids[b, : prompt + answer] = torch.tensor([*words, END])
        labels[b, prompt : prompt + answer] = ids[b, prompt : prompt + answer]
        mask[b, : prompt + answer] = 1
    return ids, labels, mask


@given(batches())
def test_any_sound_batch_has_no_finding(batch):
    assert check_labels(*batch, **OPTIONS) == []


@given(batches(), st.sampled_from(["pad-kept", "end-not-trained", "never-train", "out-of-range"]), st.data())
def test_one_planted_fault_is_named_at_its_row_and_position(batch, fault, data):
    ids, labels, mask = batch
    trained = labels != -100
    trained[:, 0] = False
    if fault == "pad-kept":
        spots = (mask == 0).nonzero().tolist()
    elif fault == "end-not-trained":  # the END that closes an answer, at t >= 2 so a span remains before it
        spots = [[b, t] for b, t in (trained & (ids == END)).nonzero().tolist() if trained[b, t - 1]]
    else:
        spots = trained.nonzero().tolist()
    if not spots:
        return
    b, t = data.draw(st.sampled_from(spots))
    if fault == "pad-kept":
        labels[b, t] = ids[b, t]
    elif fault == "end-not-trained":
        labels[b, t] = -100
    elif fault == "never-train":
        ids[b, t] = labels[b, t] = HEADER
    else:
        labels[b, t] = -1
    findings = check_labels(ids, labels, mask, **OPTIONS)
    assert (b, t) in {(row, u) for tag, row, where in map(place, findings) if tag == fault for u in where}, findings


def place(finding):
    """(tag, row, positions) of a finding: '[tag] row 1, t=3, 6..8: ...' gives ('tag', 1, [3, 6, 7, 8])."""
    tag, row, spans = re.match(r"\[([a-z-]+)\] row (\d+)(?:, t=([\d., ]+))?:", finding).groups()
    runs = [[int(x) for x in run.split("..")] for run in (spans or "").split(", ") if run]
    return tag, int(row), [t for run in runs for t in range(run[0], run[-1] + 1)]
