# label_checks.py: look at what a batch trains on, and check it, before you train.
# From the lesson "Masking targets out of PyTorch's cross-entropy", notebook 09 (debugging masks).
# MIT licence. Copy this file into your own project: it needs torch only.
"""Check the labels of a causal-LM batch in Hugging Face's convention, and show what a row trains on.

The convention: ``labels`` has the shape of ``input_ids`` and lines up with it, **unshifted**; -100
marks a position that is not trained; the model shifts inside (the logits at t are scored against
``labels[t + 1]``), so ``labels[:, 0]`` is never used. Padding is judged from ``attention_mask``,
never guessed from token values (a pad id may equal the end-of-sequence id). A "trained target" is a
position t >= 1 whose label is not -100.

``check_labels`` returns one line per problem it finds, and ``[]`` when none of its checks fires. ``[]``
is not proof of a sound batch: the checks cannot know where your answers start (a trained header word
that is not in ``never_train_ids`` passes), so still look at a row or two with ``show_labels``. Each
line starts with a stable tag, then where (row, positions t of ``input_ids``), what is wrong, what it
causes, the fix. Each tag reports at most 3 rows (``SHOWN``), then one line ``… and N more rows like
these``::

    [dtype]            labels are not int64
    [out-of-range]     a trained label (or an input id) outside [0, vocab_size), or negative but not -100
    [no-target]        a row with no trained target
    [pad-kept]         trained where attention_mask is 0
    [shifted]          a trained label differs from input_ids at its position (shifted by hand)
    [never-train]      a trained id from never_train_ids (template headers, pad)
    [end-not-trained]  an end id (end_ids) right after a trained span is not trained
    [no-end]           a trained span holds no end id and none follows it (not reported for a span
                       made only of positions already reported as [pad-kept] or [never-train])

Use it on one batch from your data loader before training (or in a test)::

    # end_ids: the token your chat template ends a turn with, which is not always tokenizer.eos_token_id
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    problems = check_labels(batch["input_ids"], batch["labels"], batch["attention_mask"],
                            vocab_size=len(tokenizer), end_ids=[end_of_turn])
    assert not problems, "\\n".join(problems)

A sound batch (ids 1 = end, 0 = pad; the prompt 5 6 is not trained):

>>> ids = torch.tensor([[5, 6, 7, 8, 1], [5, 6, 9, 1, 0]])
>>> mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
>>> labels = torch.tensor([[-100, -100, 7, 8, 1], [-100, -100, 9, 1, -100]])
>>> check_labels(ids, labels, mask, vocab_size=10, end_ids=[1], never_train_ids=[0])
[]
>>> print(show_labels(ids, labels, row=1))
5 6 [9] [1] 0

A broken one: padding kept (labels copied from input_ids, pad = end) and the real end masked:

>>> broken = torch.tensor([[-100, -100, 7, 8, -100], [-100, -100, 9, 1, 0]])
>>> for line in check_labels(ids, broken, mask, vocab_size=10, end_ids=[1]):
...     print(line)
[pad-kept] row 1, t=4: trained where attention_mask is 0; padding is learned as text: set those labels to -100
[end-not-trained] row 0, t=4: end id 1 after a trained span is -100; the model never learns to stop: train it too
"""

import torch

__all__ = ["check_labels", "show_labels"]

IGNORE = -100
SHOWN = 3  # findings shown per tag; the rest are counted in one "… and N more" line
WHAT = {  # tag: "what is wrong; what it causes: the fix" ({id} is filled in where it helps)
    "out-of-range": "id {id} is not in [0, vocab_size) nor -100; cross_entropy raises (GPU: device-side assert): "
    "use -100 for ignored targets and the tokenizer's ids",
    "no-target": "no trained target after the shift; the row teaches nothing, a batch of such rows gives nan: "
    "drop it, or cut the prompt rather than the answer",
    "pad-kept": "trained where attention_mask is 0; padding is learned as text: set those labels to -100",
    "shifted": "labels differ from input_ids; the model shifts again and learns the token two ahead: "
    "pass labels unshifted (input_ids with -100)",
    "never-train": "trains id {id} from never_train_ids; the model learns to write template or pad tokens: "
    "set those labels to -100",
    "end-not-trained": "end id {id} after a trained span is -100; the model never learns to stop: train it too",
    "no-end": "a trained span has no end id; the model never learns to stop here (cut by truncation, or end_ids "
    "does not name your end-of-turn token?): keep the end, or drop the row",
}


def _tensor(x, name, integer=True):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if integer and (x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool):
        raise TypeError(f"{name} must hold integer ids, got a {x.dtype} tensor")
    if x.dim() not in (1, 2):
        raise ValueError(f"{name} must be (B, T) or (T,), got shape {tuple(x.shape)}")
    return x if x.dim() == 2 else x[None]


def _ids(values, name):
    if isinstance(values, torch.Tensor):
        values = values.flatten().tolist() if not values.dtype.is_floating_point else [values]
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of int ids, got {type(values).__name__}")
    values = list(values)
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int)]
    if bad:
        raise TypeError(f"{name} must hold int ids, got {bad[0]!r}")
    return values


def _spans(positions):
    """'3, 6..9' from sorted positions."""
    runs = []
    for t in positions:
        if runs and t == runs[-1][1] + 1:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in runs)


def check_labels(input_ids, labels, attention_mask=None, *, vocab_size=None, end_ids=(), never_train_ids=()):
    """Return one line per problem found in a batch's labels (Hugging Face's convention), [] when no check fires."""
    ids, lab = _tensor(input_ids, "input_ids"), _tensor(labels, "labels")
    if ids.shape != lab.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and labels {tuple(labels.shape)} must have one shape")
    if attention_mask is None:
        attended = torch.ones_like(lab, dtype=torch.bool)
    else:
        mask = _tensor(attention_mask, "attention_mask", integer=False)
        if mask.shape != ids.shape:
            raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must have the shape of input_ids")
        attended = mask.to(lab.device) != 0
    if vocab_size is not None and (isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1):
        raise ValueError(f"vocab_size must be a positive int or None, got {vocab_size!r}")
    end = torch.tensor(_ids(end_ids, "end_ids"), dtype=torch.long, device=lab.device)
    never = torch.tensor(_ids(never_train_ids, "never_train_ids"), dtype=torch.long, device=lab.device)
    ids = ids.to(lab.device).long()
    found = {tag: [] for tag in WHAT}  # tag: [(row, positions, ids)]
    head = []
    if lab.dtype != torch.long:
        head.append(f"[dtype] labels are {lab.dtype}, not int64; cross_entropy wants int64 class ids: labels.long()")
    lab = lab.long()
    trained = lab != IGNORE
    trained[:, 0] = False  # the shift drops the first label
    over = (lambda x: x >= vocab_size) if vocab_size is not None else (lambda x: torch.zeros_like(x, dtype=torch.bool))
    bad_label = trained & ((lab < 0) | over(lab))
    masks = {"out-of-range": bad_label | (attended & ((ids < 0) | over(ids))), "pad-kept": trained & ~attended}
    masks["shifted"] = trained & (lab != ids) & ~bad_label
    masks["never-train"] = trained & torch.isin(lab, never)
    shown = {"out-of-range": torch.where(bad_label, lab, ids), "never-train": lab, "end-not-trained": ids}
    if len(end):
        is_end = torch.isin(ids, end)
        after = torch.zeros_like(trained)  # the first untrained position after a span
        after[:, 1:] = trained[:, :-1] & ~trained[:, 1:]
        masks["end-not-trained"] = after & is_end & attended
        start = trained.clone()
        start[:, 1:] &= ~trained[:, :-1]
        span = torch.cumsum(start.long(), dim=1)  # which span of its row each position is in (1, 2, ...)
        closed = torch.zeros(ids.shape[0], ids.shape[1] + 1, dtype=torch.bool, device=lab.device)
        holds_end = trained & torch.isin(lab, end)
        closed[holds_end.nonzero(as_tuple=True)[0], span[holds_end]] = True
        last = torch.zeros_like(trained)  # the last position of a span
        last[:, :-1] = trained[:, :-1] & ~trained[:, 1:]
        last[:, -1] = trained[:, -1]
        follows = torch.zeros_like(trained)
        follows[:, :-1] = masks["end-not-trained"][:, 1:]
        unreported = trained & ~masks["pad-kept"] & ~masks["never-train"]  # a span of only these is reported
        counts = torch.zeros_like(closed, dtype=torch.long).scatter_add_(1, span, unreported.long())
        masks["no-end"] = last & ~closed.gather(1, span) & ~follows & (counts.gather(1, span) > 0)
    found["no-target"] = [(row, [], []) for row in (~trained.any(dim=1)).nonzero().flatten().tolist()]
    for tag, m in masks.items():
        rows = m.any(dim=1).nonzero().flatten().tolist()  # only the rows shown are looked at one by one
        for r in rows[:SHOWN]:
            positions = m[r].nonzero().flatten()
            values = sorted(set(shown[tag][r, positions].tolist())) if tag in shown else []
            found[tag].append((r, positions.tolist(), values))
        found[tag] += [None] * (len(rows) - SHOWN)
    lines = head
    for tag, hits in found.items():
        for row, positions, values in hits[:SHOWN]:
            where = f"row {row}" + (f", t={_spans(positions)}" if positions else "")
            lines.append(f"[{tag}] {where}: " + WHAT[tag].format(id=", ".join(map(str, values))))
        if len(hits) > SHOWN:
            lines.append(f"[{tag}] … and {len(hits) - SHOWN} more rows like these")
    return lines


def show_labels(input_ids, labels, row=0, *, decode=None, sep=None):
    """One row as text, each trained token in [brackets]: ``[label]``, or ``[input→label]`` if they differ.

    ``decode`` maps an id to its text (e.g. ``tokenizer.decode``); without it ids are shown. ``sep`` goes
    between tokens: by default nothing with ``decode`` (BPE tokens carry their own spaces) and a space
    without it; pass ``sep=" "`` for a tokenizer whose tokens carry no spaces (WordLevel, or any
    ``decode`` that strips them). Newlines are shown as ``\\n`` so that the row stays on one line.

    >>> show_labels(torch.tensor([4, 5, 6]), torch.tensor([-100, 5, 7]), decode=lambda i: "abcdefgh"[i])
    'e[f][g→h]'
    >>> show_labels(torch.tensor([4, 5, 6]), torch.tensor([-100, 5, 7]), decode=lambda i: "abcdefgh"[i], sep=" ")
    'e [f] [g→h]'
    """
    ids, lab = _tensor(input_ids, "input_ids"), _tensor(labels, "labels")
    if ids.shape != lab.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and labels {tuple(labels.shape)} must have one shape")
    if isinstance(row, bool) or not isinstance(row, int) or not -ids.shape[0] <= row < ids.shape[0]:
        raise ValueError(f"row must be an int index into {ids.shape[0]} rows, got {row!r}")
    if decode is not None and not callable(decode):
        raise TypeError(f"decode must be a function from an id to text, got {type(decode).__name__}")
    if sep is not None and not isinstance(sep, str):
        raise TypeError(f"sep must be a str or None, got {type(sep).__name__}")
    text = decode or str
    pieces = []
    for t, (i, y) in enumerate(zip(ids[row].tolist(), lab[row].tolist(), strict=True)):
        shown = text(i) if y == i or y == IGNORE or t == 0 else f"{text(i)}→{text(y)}"
        pieces.append(f"[{shown}]" if t > 0 and y != IGNORE else shown)
    return (sep if sep is not None else "" if decode else " ").join(pieces).replace("\n", "\\n")
