# label_checks.py: look at what a batch trains on, and check it, before you train. It needs torch only.
# From the lesson "Masking targets out of PyTorch's cross-entropy", notebook 09 (debugging masks):
# https://github.com/masked-loss-lesson/masked-cross-entropy
# Copyright (c) 2026 The masked cross-entropy lesson authors. SPDX-License-Identifier: MIT
# Copy this file into your own project; keep these lines with it.
"""Check the labels of a causal-LM batch in Hugging Face's convention, and show what a row trains on.

``labels`` lines up with ``input_ids``, unshifted, -100 (``ignore_index``) where nothing is trained; the model
shifts inside, so a row's first label is never a target. Padding is where ``attention_mask`` is 0, never guessed
from token values (a 4-D ``(B, 1, T, T)`` mask, True, 1 or an added 0 where a query may attend: a token is real if
it may attend to itself, and a document starts where it may not attend to the one before; a 4-D mask in which a
padding position may attend to itself (its row unmasked) makes that padding look real: pass the 2-D mask then).
Padding-free batches (trl's packing, ``DataCollatorWithFlattening``) carry ``position_ids`` and no mask: a document
starts where they restart, and a trailing run of 0s is padding. With neither, nothing is padding. ``end_ids``,
the ids that end a turn, is required (``[]`` turns the last three checks off); none may be in ``never_train_ids``
(with pad = EOS, leave the pad id out). Pass ``decode=tokenizer.decode`` for token text, and
``vocab_size=model.get_input_embeddings().num_embeddings`` (``len(tokenizer)`` counts added tokens the model may
lack). ``WHAT`` lists the tags in the order they are reported. ``[]`` is no proof: ``[span-start]`` compares the
chat turns of a batch with each other (plain prompt-completion rows are not compared), so a shift shared by every
row passes unless you give ``header_ids``, the ids your template writes before each answer (its generation prompt,
``tokenizer.encode("<|im_start|>assistant\\n", add_special_tokens=False)``, or a plain-text header such as
``### Response:\\n``): an answer (after a prompt) that starts inside them or one token after them is then
flagged, in every row. Look at rows too (``show_labels``, and ``summarize_labels``: how each row's first answer
opens). Nor can it see a pad id that is also a text token masked by value (``labels[labels == pad] = -100``): the
holes left in answers look like a masked tool output; give padding a token of its own.
Notebook 09 shows each check at work, and ``checking_collator`` round a collator.

>>> ids = torch.tensor([[5, 6, 7, 8, 1], [5, 6, 9, 1, 0]])  # 1 = end, 0 = pad; the prompt 5 6 is not trained
>>> mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
>>> labels = torch.tensor([[-100, -100, 7, 8, 1], [-100, -100, 9, 1, -100]])
>>> check_batch(dict(input_ids=ids, labels=labels, attention_mask=mask), end_ids=[1], never_train_ids=[0])
[]
>>> print(show_labels(ids, labels, row=1))
5 6 [9] [1] 0
>>> broken = torch.tensor([[-100, -100, 7, 8, -100], [-100, -100, 9, 1, 0]])  # an end masked, padding trained
>>> [(f.tag, f.row, f.positions, f.ids) for f in check_labels(ids, broken, mask, end_ids=[1])]
[('pad-kept', 1, (4,), ()), ('end-not-trained', 0, (4,), (1,))]
"""

import operator
from collections import Counter
from itertools import groupby

import torch

__all__ = ["Finding", "check_batch", "check_labels", "checking_collator", "show_labels", "summarize_labels"]

SHOWN, CAP = 3, 8  # rows shown per tag (the rest counted in one line); runs of positions, or ids, per line
# trained tokens a template may write after an end id (Phi-3: `\n<|endoftext|>`); more are another message
AFTER_END = 3
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
    "set those labels to -100, or, where whole turns are trained (summarize_labels), restore the answer mask "
    "(an id the model writes itself, as gpt-oss's <|start|> between its messages, is not a never_train id)",
    "end-not-trained": "end id {ids} is -100 after an answer; the model never learns to stop: put it inside "
    "{{% generation %}}, or, if pad = end, mask padding by attention_mask, not by id (or end_ids does not name your "
    "end-of-turn token?)",
    "no-end": "an answer with no end id in it or after it; the model never learns to stop here (cut by "
    "truncation, or end_ids does not name your end-of-turn token?): keep the end, or drop the row",
    "span-start": "this answer starts after id {ids}, but {usual}",
}
UNSEEN = (  # header_ids right before no answer of the batch
    "header_ids {} come right before no answer: take them as a row holds them (show_labels shows the tokens before "
    "an answer: text encoded alone can merge differently), with no BOS (add_special_tokens=False), or leave them out"
)
HEADER_DOUBT = (  # where header_ids are given, two more causes ({{ }}: the line is formatted with the ids)
    ", unless header_ids stop short of the template's header (show_labels shows it), or the template's "
    "{{% generation %}} block holds its generation prompt (trl 1.16's gpt-oss training template): move that out, "
    "or leave header_ids out"
)
SHIFTED = (  # the end of a [span-start] line where the answers' header is known
    ": a header token trained, or the answer's first token masked (a prompt tokenized alone?): take the labels "
    "from the whole row's tokens"
)
EDGE = (  # [never-train] where the id is a span's first token or follows its end id: the span may be shifted
    "trains id {ids} from never_train_ids at an answer's first token or right after its end id; is the trained span "
    "one token off (a header token trained, or the first answer token masked)? then take the labels from the whole "
    "row's assistant mask, unshifted; are whole turns trained (summarize_labels)? restore the answer mask; if "
    "neither, set those labels to -100"
)


class Finding(str):
    """One finding: its line, with ``.tag``, ``.row``, ``.positions`` and ``.ids`` (``.rows`` when counted)."""

    def __new__(cls, text="", tag=None, row=None, positions=(), ids=(), rows=()):
        line = super().__new__(cls, text)
        line.tag, line.row, line.positions, line.ids, line.rows = tag, row, tuple(positions), tuple(ids), tuple(rows)
        return line


def _read(input_ids, labels, attention_mask=None, position_ids=None, decode=None):
    """The four tensors, their types and shapes checked, as (B, T) (a 4-D mask as it is) on the labels' device."""
    given = dict(input_ids=input_ids, labels=labels, attention_mask=attention_mask, position_ids=position_ids)
    ids = getattr(input_ids, "shape", None)
    for name, x in ((name, x) for name, x in given.items() if x is not None):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if name != "attention_mask" and (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
            raise TypeError(f"{name} must hold integer ids, got a {x.dtype} tensor")
        four = name == "attention_mask" and x.dim() == 4 and x.shape[1] == 1 and x.shape[2] == x.shape[3]
        if (x.dim() not in (1, 2) and not four) or x.shape[-1] == 0 or (x.shape[::2] if four else x.shape) != ids:
            also, got = ", or (B, 1, T, T)" if name == "attention_mask" else "", tuple(x.shape)
            raise ValueError(f"{name} must be (B, T) or (T,), T >= 1, as input_ids {tuple(ids)}{also}: got {got}")
    if hasattr(decode, "decode"):
        raise TypeError("decode must be a function such as tokenizer.decode, not the tokenizer itself")
    if decode is not None and not callable(decode):
        raise TypeError(f"decode must be a function from a list of ids to text, got {type(decode).__name__}")
    return [x if x is None else torch.atleast_2d(x).to(labels.device) for x in given.values()]


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


def _layout(ids, mask, pos):
    """(real, doc_start): which positions are text, not padding; where each document starts (t = 0 always)."""
    doc_start = torch.zeros_like(ids, dtype=torch.bool)
    if mask is not None and mask.dim() == 4:  # (B, 1, query, key): may a query attend to a key (True, 1; or 0 added)
        allowed = (mask == 0 if mask.is_floating_point() else mask != 0)[:, 0]
        mask = allowed.diagonal(0, 1, 2)  # a token is real if it may attend to itself; it starts a document if not
        doc_start[:, 1:] = ~allowed.diagonal(-1, 1, 2) & mask[:, 1:] & mask[:, :-1]  # to the real token before it
    if pos is not None:
        doc_start[:, 1:] |= pos[:, 1:] != pos[:, :-1] + 1
        if mask is None:  # trl pads a padding-free row with position_ids 0: a trailing run of 0s is padding
            mask = ~(pos == 0).flip(1).long().cumprod(1).flip(1).bool()
    doc_start[:, 0] = True
    return (torch.ones_like(doc_start) if mask is None else mask != 0), doc_start


def _position_checks(ids, lab, real, doc_start, top, ignore, never):
    """(target, {tag: where it fires}) for the tags that each position decides alone: (B, T) bool masks."""
    used = lab != ignore  # what the loss reads, after the shift: never the first label
    used[:, 0] = False
    target = used & ~doc_start  # a label where a packed document starts is predicted across the boundary
    bad = used & ((lab < 0) | (lab >= top))
    doc = doc_start.long().cumsum(1) - 1  # which document of its row each position is in
    targets_in_doc = torch.zeros_like(doc).scatter_add_(1, doc, target.long()).gather(1, doc)
    return target, {
        "input-out-of-range": (ids < 0) | (ids >= top),  # the embedding reads every input id, padding too
        "out-of-range": bad,
        "no-target": real & (targets_in_doc == 0),
        "pad-kept": used & ~real & ~bad,
        "cross-doc": used & doc_start & real & ~bad,
        "shifted": target & (lab != ids) & ~bad,
        "never-train": target & torch.isin(lab, never),
    }


def _spans(ids, lab, target, real, doc_start, end, never, fresh, header):
    """Each trained span (a run of targets), in row order, with what the end and start checks read around it:
    {column: a list with one item per span}."""
    width, nothing = ids.shape[1], torch.zeros_like(target[:, :1])
    (r, a), b = _starts(target).nonzero().T, (target & ~torch.cat([target[:, 1:], nothing], 1)).nonzero()[:, 1]

    def first_from(mask):  # for each t in [0, T]: the first position >= t where mask holds, T if none
        where = torch.where(mask, torch.arange(width, device=mask.device), width)
        return torch.cat([where, torch.full_like(where[:, :1], width)], 1).flip(1).cummin(1).values.flip(1)

    def count(mask, lo, hi):  # how often mask holds in [lo, hi) of each span's row
        cumulative = torch.cat([nothing.long(), mask.long().cumsum(1)], dim=1)
        return cumulative[r, hi] - cumulative[r, lo]

    is_end, same_row = torch.isin(ids, end) & real, r[1:] == r[:-1]
    turn = is_end | (torch.isin(ids, never) & real & ~_starts(real) & ~doc_start)  # a header token, not a BOS
    doc_first = torch.cummax(torch.where(doc_start, torch.arange(width, device=r.device), 0), 1).values[r, a]
    # where the untrained stretch before each span begins: after the previous span in its row, or at its document
    gap = torch.maximum(doc_first, torch.where(torch.cat([r[:1] < 0, same_row]), torch.cat([b[:1], b[:-1]]) + 1, 0))
    # where the last trained end id is, at or before each position (past AFTER_END tokens after it: another message)
    last_end = torch.cummax(torch.where(target & torch.isin(lab, end), torch.arange(width, device=r.device), -1), 1)[0]
    tail = count(fresh, last_end[r, b] + 1, b + 1)  # how many tokens each span trains after its last end id
    at = a[:, None] + torch.arange(-1 - len(header), len(header), device=a.device)  # k + 1 before a to k - 1 after
    header_end = torch.zeros_like(target)  # where header_ids end (k ids in a row)
    if 0 < len(header) <= width:
        header_end[:, len(header) - 1 :] = (ids.unfold(1, len(header), 1) == ids.new_tensor(header)).all(2)
    span = dict(  # row, first and last position, and:
        row=r,
        start=a,
        last=b,
        following=torch.cat([torch.where(same_row, a[1:], width), a[:1] * 0 + width]),  # the next span's start
        closed=(last_end[r, b] >= a) & (tail <= AFTER_END),  # it trains an end id, then a newline or so
        fresh=count(fresh, a, b + 1) > 0,  # it trains a token not reported already (pad-kept, never-train, ...)
        end_at=first_from(is_end & ~target)[r, b + 1],  # the first untrained end id after it
        stop_at=first_from(~real | doc_start | torch.isin(ids, never))[r, b + 1],  # padding, next document, header
        after_end=is_end[r, a - 1],  # it starts right after an end id (the `\n` a template writes there)
        opens=count(turn & ~target, gap, a) > 0,  # it opens a chat turn: an end id or a header token comes before it
        window=torch.stack([torch.where(a >= k, ids[r, a - k], -1) for k in (3, 2, 1, 0)], dim=1),  # ids around a
        around=torch.where((at >= 0) & (at < width), ids[r[:, None], at % width], -1),  # ids around a, header_ids long
        header=count(header_end, gap, a) > 0,  # header_ids come in the untrained stretch before it
        prompted=a - gap >= 2,  # 2 or more untrained tokens before it: a prompt, a plain-text header, a hole
    )
    return {name: column.tolist() for name, column in span.items()}


def _starts(trained):
    """Where each run of True starts."""
    return trained & ~torch.cat([torch.zeros_like(trained[:, :1]), trained[:, :-1]], dim=1)


def _ends(span):
    """[end-not-trained] and [no-end] places: an answer (its spans until an end id or a never_train id comes
    between them, so that a masked hole such as a tool's output stays inside it) needs a trained end id, in it
    or right after it (the first end id after it, past untrained tokens such as a space). A span that trains an
    end id and then more than AFTER_END tokens holds another message, which needs its own end (so a message of
    AFTER_END tokens or fewer after a trained end is not checked)."""
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


def _span_start(span, header):
    """[span-start] places. Given header_ids (k ids), an answer after a prompt (an untrained end id or never_train
    id before it, or 2 or more untrained tokens) that starts inside them (a header token trained) or one after them
    (its first token masked), not right after them; every one if they follow no answer at all. Without: once 3 or
    more, and 3 in 4, of the answers that open a turn follow one header, one that starts a token early or late
    against it (its last token and last two are compared)."""
    each = [dict(zip(span, values, strict=True)) for values in zip(*span.values(), strict=True)]  # one dict a span
    openings = [s for s in each if s["opens"]]
    if header:  # around: the ids from k + 1 before the start to k - 1 after; the header right before it is at j = 1
        openings, k = [s for s in each if s["opens"] or s["prompted"]], len(header)  # text headers open no turn
        where = [{j for j in range(k + 2) if tuple(s["around"][j : j + k]) == header} for s in openings]
        seen = any(where) or any(s["header"] for s in openings)  # header_ids before some answer
        what = "answers follow header_ids {}" + SHIFTED + HEADER_DOUBT if seen else UNSEEN
        flagged = [s for s, js in zip(openings, where, strict=True) if 1 not in js and (js or not seen)]
        return [(s["row"], s["start"]) for s in flagged], (header, what)
    openings = [(s["row"], s["start"], s["window"]) for s in openings if not s["after_end"]]
    places, usual = [], None
    for n in (1, 2):  # window: the 3 ids before the start, then the first; near: the n before, then n one off
        near = [(r, t, tuple(w[3 - n : 3]), (tuple(w[4 - n :]), tuple(w[2 - n : 2]))) for r, t, w in openings]
        for common, agree in Counter(before for _, _, before, _ in near).most_common(1):
            if agree >= 3 and 4 * agree >= 3 * len(openings):
                usual = common, f"{agree} start after id{'s' * (n > 1)} {{}}" + SHIFTED
                places += [(r, t) for r, t, before, off in near if before != common and common in off]
    return places, usual


def _listed(items, more):
    """The items joined by commas; past CAP of them, how many more there are."""
    return ", ".join(items[:CAP]) + (f", … (+{more} more)" if len(items) > CAP else "")


def _runs(positions):
    """'3, 6..9' from sorted positions (a run's positions minus their indices are equal)."""
    runs = [[t for _, t in run] for _, run in groupby(enumerate(positions), lambda kt: kt[1] - kt[0])]
    return _listed([f"{r[0]}" if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs], sum(map(len, runs[CAP:])))


def _text(ids, decode):
    """'8, 9', or with decode "8 '</s>', 9 ' cat'"."""
    return _listed([f"{i}" + (f" {decode([i])!r}" if decode else "") for i in ids], len(ids) - CAP)


def _report(masks, shown, decode, usual, packed, edge):
    """A Finding per tag and row where the tag's mask fires: SHOWN rows, then one line counting the rest."""
    lines = []
    for tag, mask in masks.items():
        rows = mask.any(dim=1).nonzero().flatten().tolist()  # only the rows shown are looked at one by one
        for row in rows[:SHOWN]:
            positions = mask[row].nonzero().flatten().tolist()
            ids = sorted(set(shown[tag][row, positions].tolist())) if tag in shown else []
            where = f"row {row}" + ("" if tag == "no-target" and not packed else f", t={_runs(positions)}")
            what = (EDGE if tag == "never-train" and edge[row, positions].any() else WHAT[tag]).format(
                ids=_text(ids, None if "range" in tag else decode), usual=usual
            )
            lines.append(Finding(f"[{tag}] {where}: {what}", tag, row, positions, ids))
        if len(rows) > SHOWN:
            lines.append(Finding(f"[{tag}] … and {len(rows) - SHOWN} more rows like these", tag, rows=rows[SHOWN:]))
    return lines


def check_labels(
    input_ids, labels, attention_mask=None, *, end_ids, position_ids=None, vocab_size=None, never_train_ids=(),
    header_ids=(), decode=None, ignore_index=-100,
):  # fmt: skip
    """The findings about a batch's labels in Hugging Face's convention, [] when no check fires (module doc)."""
    ids, lab, mask, pos = _read(input_ids, labels, attention_mask, position_ids, decode)
    vocab, ignore = (None if vocab_size is None else _int(vocab_size, "vocab_size")), _int(ignore_index, "ignore_index")
    if vocab is not None and vocab < 1:
        raise ValueError(f"vocab_size must be a positive int or None, got {vocab_size!r}")
    end, never = _ids(end_ids, "end_ids"), _ids(never_train_ids, "never_train_ids")
    header = tuple(_ids(header_ids, "header_ids"))
    if set(end) & set(never):
        raise ValueError(
            f"end_ids and never_train_ids share id(s) {sorted(set(end) & set(never))}: each answer must train its "
            "end id; with pad = end, leave the pad id out of never_train_ids (padding is found by position)"
        )
    dtype, ids, lab = lab.dtype, ids.long(), lab.long()
    end, never = (torch.tensor(x, dtype=torch.long, device=lab.device) for x in (end, never))
    real, doc_start = _layout(ids, mask, pos)
    top = vocab if vocab is not None else torch.iinfo(torch.long).max  # no id reaches it
    target, masks = _position_checks(ids, lab, real, doc_start, top, ignore, never)
    # a span's first token (more of it after, an ignored label before) or the token after its end id (EDGE)
    before, after, ignored_before = target.roll(1, 1), target.roll(-1, 1), lab.roll(1, 1) == ignore  # no t=0 target
    edge = real & ((~before & ignored_before & after) | (before & torch.isin(ids.roll(1, 1), end) & ~after))
    masks |= {tag: torch.zeros_like(target) for tag in ("end-not-trained", "no-end", "span-start")}
    usual = None
    if len(end):
        fresh = target & ~masks["pad-kept"] & ~masks["never-train"] & ~masks["out-of-range"]  # these are reported
        span = _spans(ids, lab, target, real, doc_start, end, never, fresh, header)
        places, usual = _span_start(span, header)
        for tag, where in (_ends(span) | {"span-start": places}).items():
            masks[tag][[r for r, _ in where], [t for _, t in where]] = True
    usual = usual and usual[1].format(_text(list(usual[0]), decode))  # (ids, what the answers do with them)
    shown = {"input-out-of-range": ids, "out-of-range": lab, "never-train": lab, "end-not-trained": ids}
    shown["span-start"] = ids.roll(1, dims=1)  # the token before the answer
    findings = _report(masks, shown, decode, usual, pos is not None or (mask is not None and mask.dim() == 4), edge)
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


class checking_collator:  # a class, like functools.partial, so that DataLoader workers can pickle it
    """Wrap a collator: the first ``first`` batches it returns go through ``check_batch(batch, **options)``, and
    one with findings raises ValueError listing them. ``options`` must name ``end_ids``. Each DataLoader worker
    collates with its own copy, so with ``num_workers=k`` each worker checks its own first ``first`` batches.
    A one-token shift that every row shares raises nothing unless ``options`` name ``header_ids`` (``[span-start]``
    otherwise compares rows with each other): read ``summarize_labels`` on a first batch once, where it shows."""

    def __init__(self, collator, first=2, **options):
        if not callable(collator) or "end_ids" not in options:
            got = f"a {type(collator).__name__} and {sorted(options)}"
            raise TypeError(f"checking_collator takes a collator (examples -> batch) and end_ids=[...]; got {got}")
        self.collator, self.left, self.options = collator, _int(first, "first"), options

    def __call__(self, examples):
        batch, self.left = self.collator(examples), self.left - 1
        if self.left >= 0 and (problems := check_batch(batch, **self.options)):
            raise ValueError("label_checks found problems in a batch:\n" + "\n".join(problems))
        return batch


def show_labels(input_ids, labels, row=0, *, decode=None, sep=None, ignore_index=-100):
    """One row as text, each trained token in [brackets]: ``[label]``, or ``[input→label]`` if they differ.

    ``decode`` turns a list of ids into text (``tokenizer.decode``); without it ids are shown. Each token shows
    the text it adds to the three before it: a Metaspace (sentencepiece) ``decode`` drops a word's leading space
    from a token decoded alone, and a character split across tokens shows as '�' until it is whole. ``sep`` goes
    between tokens: by default nothing with ``decode``, a space without. Newlines are shown as ``\\n``.

    >>> text = lambda ids: "".join("abcdefgh"[i] for i in ids)
    >>> show_labels(torch.tensor([4, 5, 6]), torch.tensor([-100, 5, 7]), decode=text)
    'e[f][g→h]'
    """
    ids, lab, _, _ = _read(input_ids, labels, decode=decode)
    if not -ids.shape[0] <= _int(row, "row") < ids.shape[0]:
        raise ValueError(f"row must be an int index into {ids.shape[0]} rows, got {row!r}")
    if sep is not None and not isinstance(sep, str):
        raise TypeError(f"sep must be a str or None, got {type(sep).__name__}")
    row_ids, ignore = ids[row].tolist(), _int(ignore_index, "ignore_index")

    def token(t):
        if not decode:
            return str(row_ids[t])
        before, whole = decode(row_ids[max(0, t - 3) : t]), decode(row_ids[max(0, t - 3) : t + 1])
        return whole[next((k for k, (x, y) in enumerate(zip(before, whole, strict=False)) if x != y), len(before)) :]

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
    ids, lab, mask, pos = _read(input_ids, labels, attention_mask, position_ids, decode)
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
