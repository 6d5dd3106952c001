# label_checks.py: look at what a batch trains on, and check it, before you train. It needs torch only.
# From the lesson "Masking targets out of PyTorch's cross-entropy", notebook 09 (debugging masks):
# https://github.com/masked-loss-lesson/masked-cross-entropy
# Copyright (c) 2026 The masked cross-entropy lesson authors. SPDX-License-Identifier: MIT
# Copy this file into your own project; keep these lines with it.
"""Check the labels of a causal-LM batch in Hugging Face's convention, and show what a row trains on.

``labels`` lines up with ``input_ids``, **unshifted**, -100 (``ignore_index``) where nothing is trained; the
model shifts inside (logits at t are scored against ``labels[t + 1]``), so a row's first label is never used.
Padding is where ``attention_mask`` is 0, never guessed from token values (the pad id may be the end id).
Padding-free batches (trl's ``padding_free=True``, which ``packing=True`` turns on with its default strategy;
transformers' ``DataCollatorWithFlattening``) carry ``position_ids`` and no mask: a document starts where
they restart (its first label is no target), and a trailing run of 0s is padding. With neither, nothing is
padding.

``check_labels`` returns ``[]`` when no check fires, else one finding per tag and row (``SHOWN`` = 3 rows per
tag, then ``… and N more rows like these``): its line (a ``str``) with ``.tag``, ``.row``, ``.positions`` (all
of them; the line shows 8 runs) and ``.ids``. The tags, in order (``WHAT`` below says what each means):
dtype, input-out-of-range (the embedding reads every id, padding too), out-of-range, no-target (per document
when packed), pad-kept, cross-doc, shifted, never-train, end-not-trained, no-end, span-start.

``end_ids`` is required: the ids that end a turn (``<|im_end|>``, ``<|eot_id|>``, ``<end_of_turn>``, ``</s>``;
not always ``tokenizer.eos_token_id``); ``[]`` turns the last three checks off. An answer's trained spans run on
until an end id or a never_train id (a header) comes between them: a masked hole (a tool's output) may sit
inside. ``[span-start]`` compares the answers that open a turn with each other. An end id cannot be in
``never_train_ids``: with pad = EOS (trl's fallback when a tokenizer has no pad token) the pad id is the end
id, which each answer must train. Pass ``vocab_size=model.get_input_embeddings().num_embeddings``
(``len(tokenizer)`` counts added tokens the model may lack) and ``decode=tokenizer.decode`` for token text.
``[]`` is no proof: look at a row (``show_labels``) and at each row's trained share (``summarize_labels``).

With a ``Trainer`` or trl's ``SFTTrainer``: check the first batch, or the first two of the run in the collator::

    eot = tokenizer.convert_tokens_to_ids("<|im_end|>")
    problems = check_batch(next(iter(trainer.get_train_dataloader())), end_ids=[eot],
                           vocab_size=model.get_input_embeddings().num_embeddings)
    assert not problems, "\\n".join(problems)
    trainer.data_collator = checking_collator(trainer.data_collator, first=2, end_ids=[eot])  # or ValueError

A sound batch (1 = end, 0 = pad; the prompt 5 6 is not trained), then broken (padding trained, an end masked):

>>> ids = torch.tensor([[5, 6, 7, 8, 1], [5, 6, 9, 1, 0]])
>>> mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
>>> labels = torch.tensor([[-100, -100, 7, 8, 1], [-100, -100, 9, 1, -100]])
>>> check_batch(dict(input_ids=ids, labels=labels, attention_mask=mask), end_ids=[1], never_train_ids=[0])
[]
>>> print(show_labels(ids, labels, row=1))
5 6 [9] [1] 0
>>> broken = torch.tensor([[-100, -100, 7, 8, -100], [-100, -100, 9, 1, 0]])
>>> problems = check_labels(ids, broken, mask, end_ids=[1])
>>> print(*problems, sep="\\n")
[pad-kept] row 1, t=4: a label at a padding position; padding is learned as text: set those labels to -100
[end-not-trained] row 0, t=4: end id 1 is -100 after an answer; the model never learns to stop: put it inside \
{% generation %}, or, if pad = end, mask padding by attention_mask, not by id
>>> problems[1].tag, problems[1].row, problems[1].positions, problems[1].ids
('end-not-trained', 0, (4,), (1,))
"""

import operator
from collections import Counter

import torch

__all__ = ["Finding", "check_batch", "check_labels", "checking_collator", "show_labels", "summarize_labels"]

SHOWN, CAP = 3, 8  # rows shown per tag (the rest counted in one line); runs of positions, or ids, per line
WHAT = {  # tag: "what is wrong; what it causes: the fix" ({ids} is filled in where it helps)
    "input-out-of-range": "input id {ids} is not in [0, vocab_size); the embedding raises (GPU: device-side "
    "assert), padding too: a token added without model.resize_token_embeddings(len(tokenizer))? or pad with an "
    "existing id",
    "out-of-range": "label {ids} is not in [0, vocab_size) nor ignore_index; cross_entropy raises (GPU: "
    "device-side assert): use ignore_index for ignored targets (or tokens added without resize_token_embeddings?)",
    "no-target": "no trained target after the shift; it teaches nothing, a batch of such rows gives nan: "
    "drop it, or cut the prompt rather than the answer",
    "pad-kept": "a label at a padding position; padding is learned as text: set those labels to -100",
    "cross-doc": "a label where a packed document starts, predicted from the previous document: "
    "set labels where position_ids restart to -100",
    "shifted": "labels differ from input_ids; the model shifts again and learns the token two ahead: "
    "pass labels unshifted (input_ids with -100)",
    "never-train": "trains id {ids} from never_train_ids; the model learns to write template or pad tokens: "
    "set those labels to -100",
    "end-not-trained": "end id {ids} is -100 after an answer; the model never learns to stop: put it inside "
    "{{% generation %}}, or, if pad = end, mask padding by attention_mask, not by id",
    "no-end": "an answer with no end id in it or after it; the model never learns to stop here (cut by "
    "truncation, or end_ids does not name your end-of-turn token?): keep the end, or drop the row",
    "span-start": "this answer starts after id {ids}, but {usual}: a header token trained, or the answer's first "
    "token masked (a prompt tokenized alone?): take the labels from the whole row's tokens",
}


class Finding(str):
    """One finding: its line, with ``.tag``, ``.row``, ``.positions`` and ``.ids`` (``.rows`` when counted)."""

    def __new__(cls, text="", tag=None, row=None, positions=(), ids=(), rows=()):
        line = super().__new__(cls, text)
        line.tag, line.row, line.positions, line.ids, line.rows = tag, row, tuple(positions), tuple(ids), tuple(rows)
        return line


def _read(input_ids, labels, attention_mask=None, position_ids=None):
    """The four tensors as (B, T) on the labels' device, once their types and shapes are checked."""
    given = dict(input_ids=input_ids, labels=labels, attention_mask=attention_mask, position_ids=position_ids)
    for name, x in ((name, x) for name, x in given.items() if x is not None):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if name != "attention_mask" and (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
            raise TypeError(f"{name} must hold integer ids, got a {x.dtype} tensor")
        if x.dim() not in (1, 2) or x.shape[-1] == 0 or x.shape != input_ids.shape:
            shape = tuple(input_ids.shape)
            raise ValueError(f"{name} must be (B, T) or (T,), T >= 1, as input_ids {shape}: got {tuple(x.shape)}")
    return [x if x is None else x.reshape(-1, x.shape[-1]).to(labels.device) for x in given.values()]


def _int(value, name):
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return operator.index(value)  # an int, or a numpy or torch integer


def _ids(values, name):
    if isinstance(values, torch.Tensor):
        values = values.flatten().tolist()
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of int ids, got {type(values).__name__}")
    return [_int(v, f"each of {name}") for v in values]


def _decode(decode):
    if decode is not None and not callable(decode):
        raise TypeError(f"decode must be a function from a list of ids to text, got {type(decode).__name__}")
    return decode


def _capped(items, more):
    """The items joined by commas; past CAP of them, how many more there are."""
    return ", ".join(items[:CAP]) + (f", … (+{more} more)" if len(items) > CAP else "")


def _runs(positions):
    """'3, 6..9' from sorted positions."""
    runs = []
    for t in positions:
        if runs and t == runs[-1][1] + 1:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return _capped([f"{a}" if a == b else f"{a}..{b}" for a, b in runs], sum(b - a + 1 for a, b in runs[CAP:]))


def _text(ids, decode):
    """'8, 9', or with decode "8 '</s>', 9 ' cat'"."""
    return _capped([f"{i}" + (f" {decode([i])!r}" if decode else "") for i in ids], len(ids) - CAP)


def _next(mask):
    """For each t, and t = T: the first position >= t where mask holds, T if none."""
    width = mask.shape[1]
    where = torch.where(mask, torch.arange(width, device=mask.device), width)
    return torch.cat([where, torch.full_like(where[:, :1], width)], dim=1).flip(1).cummin(1).values.flip(1)


def _starts(trained):
    return trained & ~torch.cat([trained[:, :1] & False, trained[:, :-1]], dim=1)


def _layout(ids, mask, pos):
    """(real, doc_start): which positions are text, not padding; where each document starts (t = 0 always)."""
    doc_start = torch.zeros_like(ids, dtype=torch.bool)
    doc_start[:, 0] = True
    if pos is not None:
        doc_start[:, 1:] = pos[:, 1:] != pos[:, :-1] + 1
    if mask is not None:
        return mask != 0, doc_start
    if pos is not None:  # trl pads a padding-free row with position_ids 0: a trailing run of 0s is padding
        return ~(pos == 0).flip(1).long().cumprod(1).flip(1).bool(), doc_start
    return torch.ones_like(doc_start), doc_start


def _no_target(target, real, doc_start):
    """The real positions of each document (a row, unless packed) that has no trained target."""
    doc = doc_start.long().cumsum(1) - 1  # which document of its row each position is in
    return real & (torch.zeros_like(doc).scatter_add_(1, doc, target.long()).gather(1, doc) == 0)


def _spans(ids, lab, target, real, doc_start, end, never, fresh):
    """The trained spans, row by row, as columns (lists) of what the end and start checks read around them."""
    width, ends = ids.shape[1], target & ~torch.cat([target[:, 1:], target[:, :1] & False], dim=1)
    (r, a), b, is_end = _starts(target).nonzero().T, ends.nonzero()[:, 1], torch.isin(ids, end) & real
    doc_first = torch.cummax(torch.where(doc_start, torch.arange(width, device=r.device), 0), 1).values[r, a]
    same_row = r[1:] == r[:-1]
    gap = torch.maximum(doc_first, torch.where(torch.cat([r[:1] < 0, same_row]), torch.cat([b[:1], b[:-1]]) + 1, 0))

    def count(mask, lo, hi):  # how often mask holds in [lo, hi) of each span's row
        cumulative = torch.cat([torch.zeros_like(mask[:, :1], dtype=torch.long), mask.long().cumsum(1)], dim=1)
        return cumulative[r, hi] - cumulative[r, lo]

    span = dict(
        row=r, start=a, last=b, following=torch.cat([torch.where(same_row, a[1:], width), a[:1] * 0 + width]),
        closed=count(target & torch.isin(lab, end), a, b + 1) > 0, fresh=count(fresh, a, b + 1) > 0,
        end_at=_next(is_end & ~target)[r, b + 1], stop_at=_next(~real | doc_start | torch.isin(ids, never))[r, b + 1],
        after_end=is_end[r, a - 1],  # the `\n` a template writes after an end, trained by full-text labels
        opens=(count(is_end & ~target, gap, a) > 0) | ((gap == doc_first) & (count(real, gap, a) >= 2)),
        window=torch.stack([torch.where(a >= k, ids[r, a - k], -1) for k in (3, 2, 1, 0)], dim=1),
    )  # fmt: skip
    return {name: column.tolist() for name, column in span.items()}


def _ends(span):
    """[end-not-trained] and [no-end] places: an answer (its spans until an end id or a never_train id comes
    between them, so that a masked hole such as a tool's output stays inside it) needs a trained end id, in it
    or right after it (the first end id after it, past untrained tokens such as a space)."""
    places, fresh, after_end = {"end-not-trained": [], "no-end": []}, False, None
    for k, row in enumerate(span["row"]):
        fresh |= span["fresh"][k]
        after_end = span["after_end"][k] if after_end is None else after_end
        if span["closed"][k]:
            place = None
        elif span["end_at"][k] < min(span["stop_at"][k], span["following"][k]):  # maybe after a space token
            place = "end-not-trained", span["end_at"][k]
        elif span["stop_at"][k] <= span["following"][k]:  # the row or document ends, or padding starts, first
            place = None if after_end else ("no-end", span["last"][k])
        else:
            continue  # a masked hole, then more of the same answer
        if place and fresh:
            places[place[0]].append((row, place[1]))
        fresh, after_end = False, None
    return places


def _span_start(span):
    """[span-start] places: the answers that open a turn (an end id before them) follow the same header; one that
    starts a token early (it trains the header's last token) or late (the header ends two before) is flagged.
    The header's last token and last two are compared: it may end in two equal tokens (Llama-3's two newlines)
    or come after varied text (Mistral's `[/INST]`)."""
    columns = zip(*(span[c] for c in ("row", "start", "window", "opens", "after_end")), strict=True)
    openings = [(row, t, window) for row, t, window, opens, after_end in columns if opens and not after_end]
    places, usual = [], None
    for n in (1, 2):  # window: the 3 ids before the start, then the first one
        before = Counter(tuple(w[3 - n : 3]) for _, _, w in openings).most_common(2)
        if before and before[0][1] >= 2 and (len(before) == 1 or before[1][1] < before[0][1]):
            header, usual = before[0][0], before[0]
            places += [(r, t) for r, t, w in openings if tuple(w[3 - n : 3]) != header
                       and header in (tuple(w[4 - n :]), tuple(w[2 - n : 2]))]  # fmt: skip
    return places, usual


def _report(masks, shown, decode, usual, packed):
    lines = []
    for tag, mask in masks.items():
        rows = mask.any(dim=1).nonzero().flatten().tolist()  # only the rows shown are looked at one by one
        for row in rows[:SHOWN]:
            positions = mask[row].nonzero().flatten()
            ids = sorted(set(shown[tag][row, positions].tolist())) if tag in shown else []
            where = f"row {row}" + ("" if tag == "no-target" and not packed else f", t={_runs(positions.tolist())}")
            what = WHAT[tag].format(ids=_text(ids, None if "range" in tag else decode), usual=usual)
            lines.append(Finding(f"[{tag}] {where}: {what}", tag, row, positions.tolist(), ids))
        if len(rows) > SHOWN:
            lines.append(Finding(f"[{tag}] … and {len(rows) - SHOWN} more rows like these", tag, rows=rows[SHOWN:]))
    return lines


def check_labels(
    input_ids, labels, attention_mask=None, *, end_ids, position_ids=None, vocab_size=None, never_train_ids=(),
    decode=None, ignore_index=-100,
):  # fmt: skip
    """The findings about a batch's labels in Hugging Face's convention, [] when no check fires (module doc)."""
    ids, lab, mask, pos = _read(input_ids, labels, attention_mask, position_ids)
    vocab, ignore = (None if vocab_size is None else _int(vocab_size, "vocab_size")), _int(ignore_index, "ignore_index")
    if vocab is not None and vocab < 1:
        raise ValueError(f"vocab_size must be a positive int or None, got {vocab_size!r}")
    end, never = _ids(end_ids, "end_ids"), _ids(never_train_ids, "never_train_ids")
    if set(end) & set(never):
        raise ValueError(
            f"end_ids and never_train_ids share id(s) {sorted(set(end) & set(never))}: each answer must train its "
            "end id; with pad = end, leave the pad id out of never_train_ids (padding is found by position)"
        )
    decode, dtype, ids, lab = _decode(decode), lab.dtype, ids.long(), lab.long()
    end, never = (torch.tensor(x, dtype=torch.long, device=lab.device) for x in (end, never))
    real, doc_start = _layout(ids, mask, pos)
    used = lab != ignore  # what the loss reads, after the shift
    used[:, 0] = False
    target = used & ~doc_start
    top = vocab if vocab is not None else torch.iinfo(torch.long).max  # no id reaches it
    bad = used & ((lab < 0) | (lab >= top))
    masks = {
        "input-out-of-range": (ids < 0) | (ids >= top),
        "out-of-range": bad,
        "no-target": _no_target(target, real, doc_start),
        "pad-kept": used & ~real & ~bad,
        "cross-doc": used & doc_start & real & ~bad,
        "shifted": target & (lab != ids) & ~bad,
        "never-train": target & torch.isin(lab, never),
    }
    masks |= {tag: torch.zeros_like(target) for tag in ("end-not-trained", "no-end", "span-start")}
    usual = None
    if len(end):
        fresh = target & ~masks["pad-kept"] & ~masks["never-train"]  # an answer of only these is reported already
        span = _spans(ids, lab, target, real, doc_start, end, never, fresh)
        places, usual = _span_start(span)
        for tag, where in (_ends(span) | {"span-start": places}).items():
            masks[tag][[r for r, _ in where], [t for _, t in where]] = True
    usual = usual and f"{usual[1]} start after id{'s' * (len(usual[0]) > 1)} {_text(list(usual[0]), decode)}"
    shown = {"input-out-of-range": ids, "out-of-range": lab, "never-train": lab, "end-not-trained": ids}
    shown["span-start"] = ids.roll(1, dims=1)  # the token before the answer
    findings = _report(masks, shown, decode, usual, pos is not None)
    if dtype != torch.long:
        text = f"[dtype] labels are {dtype}, not int64; cross_entropy wants int64 class ids: labels.long()"
        findings.insert(0, Finding(text, "dtype"))
    return findings


def check_batch(batch, **options):
    """``check_labels`` on what a collator returns (a dict or ``BatchEncoding``): its ``input_ids`` and ``labels``,
    its ``attention_mask`` and ``position_ids`` when present; other keys (``cu_seq_lens_q``, ...) are ignored."""
    if not hasattr(batch, "keys") or not {"input_ids", "labels"} <= set(batch.keys()):
        got = f"keys {sorted(batch.keys())}" if hasattr(batch, "keys") else f"a {type(batch).__name__}"
        raise TypeError(f"batch must be a dict (or BatchEncoding) with input_ids and labels, got {got}")
    mask, pos = batch.get("attention_mask"), batch.get("position_ids")
    return check_labels(batch["input_ids"], batch["labels"], mask, position_ids=pos, **options)


def checking_collator(collator, first=2, **options):
    """Wrap a collator: the first ``first`` batches it returns go through ``check_batch(batch, **options)``, and
    one with findings raises ValueError listing them. ``options`` must name ``end_ids``."""
    if not callable(collator) or "end_ids" not in options:
        got = f"a {type(collator).__name__} and {sorted(options)}"
        raise TypeError(f"checking_collator takes a collator (examples -> batch) and end_ids=[...]; got {got}")
    checks = iter(range(_int(first, "first")))

    def collate(examples):
        batch = collator(examples)
        if next(checks, None) is not None and (problems := check_batch(batch, **options)):
            raise ValueError("label_checks found problems in a batch:\n" + "\n".join(problems))
        return batch

    return collate


def _piece(decode, ids, t):
    """The text token t adds to the three before it: a Metaspace (sentencepiece) decode drops a word's leading
    space when it decodes the token alone. A character split across tokens shows as '�' until it is whole."""
    before, whole = decode(ids[max(0, t - 3) : t]), decode(ids[max(0, t - 3) : t + 1])
    return whole[next((k for k, (x, y) in enumerate(zip(before, whole, strict=False)) if x != y), len(before)) :]


def show_labels(input_ids, labels, row=0, *, decode=None, sep=None, ignore_index=-100):
    """One row as text, each trained token in [brackets]: ``[label]``, or ``[input→label]`` if they differ.

    ``decode`` turns a list of ids into text (``tokenizer.decode``; each token is decoded after the ones before
    it, so it keeps its spaces); without it ids are shown. ``sep`` goes between tokens: by default nothing with
    ``decode``, a space without. Newlines are shown as ``\\n``.

    >>> text = lambda ids: "".join("abcdefgh"[i] for i in ids)
    >>> show_labels(torch.tensor([4, 5, 6]), torch.tensor([-100, 5, 7]), decode=text)
    'e[f][g→h]'
    """
    ids, lab, _, _ = _read(input_ids, labels)
    if not -ids.shape[0] <= _int(row, "row") < ids.shape[0]:
        raise ValueError(f"row must be an int index into {ids.shape[0]} rows, got {row!r}")
    if sep is not None and not isinstance(sep, str):
        raise TypeError(f"sep must be a str or None, got {type(sep).__name__}")
    row_ids, ignore, decode = ids[row].tolist(), _int(ignore_index, "ignore_index"), _decode(decode)
    token = (lambda t: _piece(decode, row_ids, t)) if decode else (lambda t: str(row_ids[t]))
    pieces = []
    for t, y in enumerate(lab[row].tolist()):
        label = "" if y in (row_ids[t], ignore) else "→" + (decode([y]) if decode else str(y))
        pieces.append(f"[{token(t)}{label}]" if t > 0 and y != ignore else token(t))
    return (sep if sep is not None else "" if decode else " ").join(pieces).replace("\n", "\\n")


def summarize_labels(input_ids, labels, attention_mask=None, *, position_ids=None, decode=None, ignore_index=-100):
    """One line per row: how many of its real tokens are trained targets, in how many spans, and how the first
    span opens (two tokens before it, two of it). Near 100%: a mask lost; more than your answers' share: user
    turns or headers trained; an opening that is not your header: a span a token off.

    >>> summarize_labels(torch.tensor([[5, 6, 7, 8, 1, 0]]), torch.tensor([[-100, -100, 7, 8, 1, -100]]),
    ...                  torch.tensor([[1, 1, 1, 1, 1, 0]]))
    ['row 0: 3 of 5 real tokens trained (60%) in 1 span(s); the first opens 5 6 [7] [8]']
    """
    ids, lab, mask, pos = _read(input_ids, labels, attention_mask, position_ids)
    real, doc_start = _layout(ids, mask, pos)
    target = (lab != _int(ignore_index, "ignore_index")) & ~doc_start & real
    starts, lines = _starts(target), []
    for row, (n, of, spans) in enumerate(zip(*(x.sum(1).tolist() for x in (target, real, starts)), strict=True)):
        lines.append(f"row {row}: {n} of {of} real tokens trained ({100 * n / max(of, 1):.0f}%) in {spans} span(s)")
        if spans:
            a = starts[row].nonzero()[0].item()
            window = slice(max(0, a - 2), a + 2)
            lines[-1] += f"; the first opens {show_labels(ids[row, window], lab[row, window], decode=decode, sep=' ')}"
    return lines
