"""Notebook 06's exercise checkers (masks in transformers); ``exercises.check`` is the front door.

Each checker runs the learner's answer on cases of its own and raises AssertionError with a message
that says what differs. A blank answer (None, or a function that still returns None) never reaches
a checker: the front door says it is not answered yet.
"""

import torch


def _first_turn_only(wanted):
    """``wanted`` with every assistant turn after the first one set to -100."""
    rows = []
    for row in wanted:
        kept = [label != -100 for label in row]
        if True not in kept:
            rows.append(row)
            continue
        first_end = next((t for t in range(kept.index(True), len(row)) if not kept[t]), len(row))
        rows.append(row[:first_end] + [-100] * (len(row) - first_end))
    return rows


def _cut_off_dropped(wanted, input_ids, end_id=13):
    """``wanted`` with each turn that truncation cut off (kept to the row's end, no end token) set to -100."""
    rows = []
    for row, ids in zip(wanted, input_ids.tolist(), strict=True):
        t = len(row)
        if ids[-1] != end_id:
            while t > 0 and row[t - 1] != -100:
                t -= 1
        rows.append(row[:t] + [-100] * (len(row) - t))
    return rows


def _after_first_header(wanted, input_ids, assistant_id=12, pad_id=0):
    """Every token after each row's first assistant header labelled (padding aside): no turn ever closed."""
    rows = []
    for row, ids in zip(wanted, input_ids.tolist(), strict=True):
        start = ids.index(assistant_id) + 1 if assistant_id in ids else len(ids)
        rows.append(row[:start] + [-100 if token == pad_id else token for token in ids[start:]])
    return rows


def _carried_into(wanted):
    """The rows that a turn left open at the end of the row before would leak into (first index), or None."""
    for r in range(1, len(wanted)):
        if wanted[r - 1][-1] != -100 and wanted[r][0] == -100:
            return r
    return None


def _assistant_cases():
    """(input_ids, wanted labels) pairs: <|user|>=11 <|assistant|>=12 <|end|>=13, pad 0."""
    ids = torch.tensor(
        [
            [11, 4, 13, 12, 4, 5, 13, 0, 0, 0],
            [11, 6, 13, 12, 9, 13, 11, 7, 13, 0],
            [11, 6, 7, 13, 12, 9, 10, 4, 5, 6],  # cut off inside an assistant turn
        ]
    )
    want = [
        [-100, -100, -100, -100, 4, 5, 13, -100, -100, -100],
        [-100, -100, -100, -100, 9, 13, -100, -100, -100, -100],
        [-100, -100, -100, -100, -100, 9, 10, 4, 5, 6],
    ]
    # Two assistant turns per chat: notebook 06's chat, and one whose second turn was cut off.
    two_turns = torch.tensor(
        [
            [11, 4, 13, 12, 4, 5, 13, 11, 6, 7, 8, 13, 12, 9, 10, 13],
            [11, 6, 13, 12, 9, 13, 11, 7, 13, 12, 10, 4, 5, 6, 7, 8],
        ]
    )
    want_two = [
        [-100, -100, -100, -100, 4, 5, 13, -100, -100, -100, -100, -100, -100, 9, 10, 13],
        [-100, -100, -100, -100, 9, 13, -100, -100, -100, -100, 10, 4, 5, 6, 7, 8],
    ]
    return [
        (ids, want),
        (ids[1:2, :6], [want[1][:6]]),
        (two_turns, want_two),
        # a cut-off row followed by other rows: its open turn must not run on into the next row
        (ids[[2, 0, 1]], [want[2], want[0], want[1]]),
        (two_turns[[1, 0]], [want_two[1], want_two[0]]),
    ]


def _check_assistant_labels(assistant_labels):
    for input_ids, wanted in _assistant_cases():
        before = input_ids.clone()
        got = assistant_labels(input_ids, 12, 13)
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert torch.equal(input_ids, before), "input_ids were changed: build the labels in a new tensor"
        assert got.dtype == torch.long, f"labels should be int64 (torch.long), got {got.dtype}"
        assert got.shape == input_ids.shape, f"labels should have the shape of input_ids, got {tuple(got.shape)}"
        if got.tolist() == wanted:
            continue
        message = f"for input_ids {input_ids.tolist()} expected {wanted}, got {got.tolist()}"
        if got.masked_fill(got == -1, -100).tolist() == wanted:
            raise AssertionError(
                message + " (-1 marks the ignored labels: transformers ignores -100, which its loss, the Trainer's"
                " count and its collators all assume; use -100)"
            )
        ends = torch.tensor(wanted).masked_fill(input_ids == 13, -100).tolist()  # the end tokens dropped
        headers = torch.where(input_ids == 12, input_ids, torch.tensor(wanted)).tolist()  # the headers kept
        carried = _carried_into(wanted)
        if got[:, :-1].tolist() == [row[1:] for row in wanted] or got[:, 1:].tolist() == [row[:-1] for row in wanted]:
            message += " (shifted by one: transformers labels line up with input_ids; the model shifts them)"
        elif carried is not None and got[carried, 0].item() != -100:
            message += (
                f" (row {carried} starts inside an assistant turn: the turn cut off at the end of row {carried - 1}"
                " ran on into it. Reset at each row (along dim=1 if vectorised): turns never cross rows)"
            )
        elif got.tolist() == _cut_off_dropped(wanted, input_ids) != wanted:
            message += (
                " (the turn cut off by truncation is -100: it has no end token, but its tokens are still the"
                " assistant's; keep them to the end of the row)"
            )
        elif got.tolist() == _first_turn_only(wanted):
            message += (
                " (only the first assistant turn is labelled: a chat can hold several, and every one of them,"
                " with its end token, is a target)"
            )
        elif got.tolist() == ends:
            message += " (the end-of-turn token is -100: keep it, so that the model learns to end its turn)"
        elif got.tolist() == torch.where(input_ids == 0, input_ids, torch.tensor(wanted)).tolist() != wanted:
            message += " (padding is labelled: the padding (id 0) after a chat is no target; keep it -100)"
        elif got.tolist() == torch.where(input_ids == 13, input_ids, torch.tensor(wanted)).tolist():
            message += (
                " (a user turn's end token is labelled: an end token after a user turn closes no assistant turn,"
                " and the model never has to produce it)"
            )
        elif got.tolist() == _after_first_header(wanted, input_ids):
            message += (
                " (user turns after the first assistant turn are labelled: an end token closes the assistant's"
                " turn, and only the next assistant header opens one again)"
            )
        elif got.tolist() == headers:
            message += (
                " (the assistant header is labelled: the template writes it at generation time"
                " (add_generation_prompt), so the model never has to produce it)"
            )
        raise AssertionError(message)


def _check_pack(pack):
    cases = [  # (docs, input_ids, labels, position_ids)
        ([[4, 5, 1], [6, 7, 8, 1]], [4, 5, 1, 6, 7, 8, 1], [-100, 5, 1, -100, 7, 8, 1], [0, 1, 2, 0, 1, 2, 3]),
        ([[9, 1], [3], [2, 2, 1]], [9, 1, 3, 2, 2, 1], [-100, 1, -100, -100, 2, 1], [0, 1, 0, 0, 1, 2]),
        ([[5, 6, 1]], [5, 6, 1], [-100, 6, 1], [0, 1, 2]),
    ]
    keys = ("input_ids", "labels", "position_ids")
    for docs, *wanted in cases:
        given = [list(doc) for doc in docs]
        got = pack(given)
        assert given == docs, f"the documents passed in were changed ({docs} became {given}): build new lists"
        assert isinstance(got, dict) and set(got) >= set(keys), f"return a dict with the keys {list(keys)}"
        assert "attention_mask" not in got, (
            "the packed row carries an attention_mask: even all ones, it turns off the block-diagonal mask that"
            " transformers builds from position_ids (section 9), so each document would attend to the one before"
        )
        for key, want in zip(keys, wanted, strict=True):
            value = got[key]
            assert isinstance(value, torch.Tensor), f"{key} should be a tensor, got {type(value).__name__}"
            assert value.dtype == torch.long, f"{key} should be int64 (torch.long), got {value.dtype}"
            assert value.shape == (1, len(want)), f"{key} should have shape (1, {len(want)}), got {tuple(value.shape)}"
            assert value.tolist() == [want], f"for docs {docs} {key} should be {[want]}, got {value.tolist()}"


def _allowed(position_ids, new_document, causal=True):
    """(T, T) bool: may query i attend to key j? ``new_document`` (bool, one per token) starts each document."""
    document = new_document.long().cumsum(0)
    allowed = document[:, None] == document[None, :]
    return allowed & torch.ones_like(allowed).tril() if causal else allowed


def _check_block_mask(block_mask):
    cases = [
        [0, 1, 2, 0, 1, 2, 3],  # notebook 06's packed row
        [0, 1, 0, 0, 1, 2],  # a one-token document in the middle
        [0, 1, 2, 3],  # one document: a plain causal mask
        [2, 3, 4, 2, 3],  # positions that start at 2, as DataCollatorWithFlattening(position_ids_start=2) gives
        [0, 1, 5, 6],  # positions that jump upward: a new document too (1 is not followed by 2)
    ]
    for row in cases:
        position_ids = torch.tensor([row])
        got = block_mask(position_ids)
        assert torch.equal(position_ids, torch.tensor([row])), "position_ids were changed: build the mask anew"
        T = len(row)
        assert isinstance(got, torch.Tensor), f"expected a tensor, got {type(got).__name__}"
        assert got.shape == (1, 1, T, T), f"the mask should have shape (1, 1, {T}, {T}), got {tuple(got.shape)}"
        assert got.dtype != torch.bool, (
            "a boolean mask: sdpa reads True as may attend, but an eager model adds it to the scores as 0 and 1,"
            " which blocks nothing (section 9); return the additive form, 0 where a token may attend and"
            " torch.finfo(torch.float32).min where it may not"
        )
        assert got.dtype == torch.float32, f"the mask should be float32 (the model's dtype here), got {got.dtype}"
        pos = torch.tensor(row)
        want = _allowed(pos, torch.diff(pos, prepend=pos[:1] - 1) != 1)  # the library's rule
        mask = got[0, 0]
        zero = mask == 0
        if torch.equal(zero, want) and (mask[~want] <= -1e9).all():  # finfo.min, -inf, or anything that swamps a score
            continue
        message = f"for position_ids {[row]} the entries that are 0 (may attend) should be {want.int().tolist()}"
        message += f", got {zero.int().tolist()}"
        if torch.equal(zero, want):
            worst = mask[~want].max().item()
            message = f"for position_ids {[row]} a blocked entry is {worst:.3g}: "
            message += (
                "added to a score, a number that is not negative blocks nothing"
                if worst >= 0
                else "a fixed constant blocks only the scores it outweighs, and each precision has its own range"
            )
            message += "; use torch.finfo(torch.float32).min (or -inf), as the exercise asks: it outweighs any score"
        elif torch.equal(mask, want.float()):
            message += (
                " (a 1/0 mask, the convention of the 2-D attention_mask: added to the scores, 1 and 0 block nothing"
                " in either implementation (section 9); return 0 where a token may attend and"
                " torch.finfo(torch.float32).min where it may not)"
            )
        elif torch.equal(zero, _allowed(pos, torch.diff(pos, prepend=pos[:1]) < 0)) or torch.equal(
            zero, _allowed(pos, torch.diff(pos, prepend=pos[:1]) <= 0)
        ):
            message += (
                " (a new document only where a position does not increase: positions that jump upward, 1 then 5,"
                " start one too; a document starts wherever a position is not the one before plus 1)"
            )
        elif torch.equal(zero, _allowed(pos, pos == 0)):
            message += (
                " (a new document only where a position is 0: positions need not start at 0; a document starts"
                " wherever a position does not follow the one before)"
            )
        elif torch.equal(zero, _allowed(pos, torch.arange(T) == 0)):
            message += " (a plain causal mask: each document attends to the ones before it)"
        elif torch.equal(zero, _allowed(pos, torch.diff(pos, prepend=pos[:1] - 1) != 1, causal=False)):
            message += " (each token attends to later tokens of its own document: keep the causal triangle, j <= i)"
        elif torch.equal(zero, ~want):
            message += " (inverted: 0 marks where a token may attend, the large negative number where it may not)"
        raise AssertionError(message)


# name: (checker, the hint shown after a first wrong attempt)
EXERCISES = {
    "06-assistant-labels": (
        _check_assistant_labels,
        "walk each row, starting outside any turn: after an assistant header, keep tokens up to and including"
        " the next end-of-turn",
    ),
    "06-pack": (_check_pack, "labels: [-100] + doc[1:] for each doc; positions: range(len(doc)) for each doc"),
    "06-block-mask": (
        _check_block_mask,
        "number the documents with (torch.diff(pos, prepend=pos[:1] - 1) != 1).cumsum(0), then keep same"
        " document and key <= query, as section 9 does",
    ),
}
