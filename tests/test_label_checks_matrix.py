"""label_checks on realistic batches: chats rendered by four template families (ChatML, Llama-3-style
headers, Gemma-style turns, a ChatML with a `<think>` block, and a Mistral-style `[INST]` one) with
tokenizers trained here in memory, labels from each template's `{% generation %}` block, and plain-text
prompt-completion rows labelled as trl does it; then padded, truncated or packed the way trainers do it.
Each batch is sound or carries one common bug, and must get exactly the set of tags written beside it: no
more, no less.

Prompt-completion rows follow trl 1.16.0's SFTTrainer for a non-conversational dataset
(trl/trainer/sft_trainer.py): it appends the EOS token to each completion (lines 1292-1297), tokenizes the
prompt and prompt + completion, and trains from where the two diverge (`common_prefix_length`, lines
1341-1367); `completion_only_loss=None`, the default, means completion-only loss for such a dataset
(trl/trainer/sft_config.py, lines 261-272).

The layouts follow trl 1.16.0's `DataCollatorForLanguageModeling` (trl/trainer/sft_trainer.py): it pads
input_ids with the pad id and labels with -100, by position (lines 195-203); with `padding_free` it
concatenates the examples into one row (189-192) and returns `position_ids`, padded with 0, and no
`attention_mask` (177-182, 204-207), then sets the label at each `position_ids == 0` to -100 (line 208); the
trainer pads with the EOS token when the tokenizer has none (line 969). `keep_start`/`keep_end` truncation
keeps the first or last `max_length` tokens of ids and labels alike.
"""

import copy
import functools
import re

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from label_checks import check_batch, show_labels, summarize_labels

WORDS = "red green blue cat dog sun moon tree fish bird one two three".split()
SPECIAL = ["<|pad|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|start_header_id|>",
           "<|end_header_id|>", "<|eot_id|>", "<think>", "</think>", "<bos>", "<start_of_turn>", "<end_of_turn>",
           "<eos>", "<pad>", "<s>", "</s>", "[INST]", "[/INST]", "<tool>", "</tool>"]  # fmt: skip


TEXT = [  # (prompt, completion): trl's documentation example (prompts that end alike, one ending in a word that
    ("The sky is", " blue"),  # starts another completion), then two prompt formats, with and without a newline
    ("The sun is", " hot"),
    ("The fish is", " red"),
    ("The moon is red", ", not blue."),
    ("What is red plus cat?\nAnswer:", " red cat"),
    ("What is sun plus moon?\nAnswer:\n", "sun moon"),
]


@functools.cache
def tokenizer(kind):
    """A BPE tokenizer trained here: 'byte' is byte-level (GPT-2, Llama-3, Qwen), 'meta' is Metaspace
    (sentencepiece-style, Llama-2, Mistral, Gemma), with newlines kept apart as Gemma's tokenizer does."""
    bpe = Tokenizer(models.BPE())
    if kind == "byte":
        bpe.pre_tokenizer, bpe.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    else:
        split = pre_tokenizers.Split("\n", "isolated")
        bpe.pre_tokenizer = pre_tokenizers.Sequence([split, pre_tokenizers.Metaspace(prepend_scheme="first")])
        bpe.decoder = decoders.Metaspace(prepend_scheme="first")
    corpus = [
        text
        for a in WORDS
        for b in WORDS
        for text in (
            f"user\nWhat is {a} plus {b}?\nassistant\n{a} {b}\n",
            f"model\n{b} then {a}.\n\n{a}",
            f" [INST] {a} ",
        )
    ] + [prompt + completion for prompt, completion in TEXT]  # the plain prompt-completion rows' own characters
    alphabet = pre_tokenizers.ByteLevel.alphabet() if kind == "byte" else []
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIAL,
                                                        initial_alphabet=alphabet, show_progress=False))  # fmt: skip
    return PreTrainedTokenizerFast(tokenizer_object=bpe)


# --- templates: {% generation %} marks what is trained --------------------------------------------------
END = {
    "chatml": "<|im_end|>",
    "think": "<|im_end|>",
    "llama3": "<|eot_id|>",
    "gemma": "<end_of_turn>",
    "mistral": "</s>",
}
KIND = {"chatml": "byte", "think": "byte", "llama3": "byte", "gemma": "meta", "mistral": "meta", "text": "byte",
        "text-meta": "meta"}  # fmt: skip
END |= {"text": "<|endoftext|>", "text-meta": "</s>"}  # plain prompt-completion: the EOS trl appends
NEVER = {  # the template's own tokens, never a target (the pad is added when it differs from the end)
    "chatml": ["<|im_start|>"],
    "think": ["<|im_start|>"],
    "llama3": ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>"],
    "gemma": ["<bos>", "<start_of_turn>"],
    "mistral": ["<s>", "[INST]", "[/INST]"],
    "text": [],
    "text-meta": [],
}
HEADER = {  # (text before the whole chat, a turn's header for a role, the text after a turn's end)
    "chatml": ("", "<|im_start|>{{ m['role'] }}\n", "{{ '\\n' }}"),
    "think": ("", "<|im_start|>{{ m['role'] }}\n", "{{ '\\n' }}"),
    "llama3": ("<|begin_of_text|>", "<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n", ""),
    "gemma": ("<bos>", "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n", "{{ '\\n' }}"),
}
THINK = "{% if m.get('reasoning') %}<think>\n{{ m['reasoning'] }}\n</think>\n\n{% endif %}"
EMPTY = "{% if not m.get('reasoning') %}<think>\n\n</think>\n\n{% endif %}"


def template(family, end_inside=True, last_only=False, empty_inside=False):
    """A chat template; end_inside=False leaves the end token outside {% generation %} (the never-stops bug),
    last_only trains only the last answer, empty_inside trains the empty think block (trl's qwen3 template)."""
    end = END[family]
    if family == "mistral":  # <s>[INST] q [/INST] a</s>: the answer's end after a space when outside
        close = "</s>{% endgeneration %}" if end_inside else "{% endgeneration %} </s>"
        user = "{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% else %}"
        return (
            "<s>{% for m in messages %}"
            + user
            + "{% generation %} {{ m['content'] }}"
            + close
            + "{% endif %}{% endfor %}"
        )
    start, header, after = HEADER[family]
    body = THINK + "{{ m['content'] }}" if family == "think" else "{{ m['content'] }}"
    before = EMPTY if family == "think" and not empty_inside else ""
    body = (EMPTY if empty_inside else "") + body
    trained = "{% generation %}" + body + (end + "{% endgeneration %}" if end_inside else "{% endgeneration %}" + end)
    plain = body + end
    answer = before + (f"{{% if loop.last %}}{trained}{{% else %}}{plain}{{% endif %}}" if last_only else trained)
    user = "{{ m['content'] }}" + end
    turn = "{% if m['role'] == 'assistant' %}" + answer + after + "{% else %}" + user + after + "{% endif %}"
    return start + "{% for m in messages %}" + header + turn + "{% endfor %}"


def chats(turns=1, reasoning=False, tool=False, n=4):
    """n conversations of different lengths; the odd ones reason when reasoning=True; tool puts a tool's
    output (to be masked) inside each answer."""
    out = []
    for k in range(n):
        a, b = WORDS[k % 13], WORDS[(3 * k + 1) % 13]
        chat = []
        for turn in range(turns):
            chat.append(dict(role="user", content=f"What is {a} plus {b}?" + " and more" * (k % 3) + f" {turn}"))
            answer = " ".join([a, b] * (1 + (k + turn) % 3))
            if tool:
                answer = f"{a} <tool>{b} {b} {a}</tool> {answer}"
            chat.append(dict(role="assistant", content=answer))
            if reasoning and k % 2:
                chat[-1]["reasoning"] = f"{b} {a} so {a}"
        out.append(chat)
    return out


def encode(family, chat, **options):
    """(ids, labels) of one chat: labels are the ids inside {% generation %}, -100 elsewhere."""
    enc = tokenizer(KIND[family]).apply_chat_template(
        chat, chat_template=template(family, **options), tokenize=True, return_dict=True,
        return_assistant_tokens_mask=True,
    )  # fmt: skip
    ids = enc["input_ids"]
    return ids, [i if keep else -100 for i, keep in zip(ids, enc["assistant_masks"], strict=True)]


def encode_text(family, prompt, completion, end=True):
    """(ids, labels) of a plain prompt-completion row, as trl builds it: the EOS appended to the completion, and
    trained from where the prompt's tokens and the whole row's diverge."""
    tok = tokenizer(KIND[family])
    prompt_ids = tok(prompt)["input_ids"]
    ids = tok(prompt + completion + (END[family] if end else ""))["input_ids"]
    shared = next((k for k, (a, b) in enumerate(zip(prompt_ids, ids, strict=False)) if a != b), len(prompt_ids))
    return ids, [-100] * shared + ids[shared:]


def pad(examples, pad_id, side="right"):
    """What a padding collator returns: ids padded with pad_id, labels with -100, an attention_mask."""
    width = max(len(ids) for ids, _ in examples)
    rows = {"input_ids": [], "labels": [], "attention_mask": []}
    for ids, labels in examples:
        fill = width - len(ids)
        for key, row, value in zip(rows, (ids, labels, [1] * len(ids)), (pad_id, -100, 0), strict=True):
            rows[key].append([value] * fill + row if side == "left" else row + [value] * fill)
    return {key: torch.tensor(value) for key, value in rows.items()}


def pack(examples, pad_id, boundaries=True, multiple=None):
    """One packed row. With boundaries, as trl's padding-free collator: position_ids restart at each example,
    the label there is -100, no attention_mask, padded to a multiple with the pad id. Without: the examples
    simply concatenated (a ConstantLengthDataset-style row)."""
    ids = [i for row, _ in examples for i in row]
    labels = [y for _, row in examples for y in row]
    if not boundaries:
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels])}
    position = [t for row, _ in examples for t in range(len(row))]
    fill = -len(ids) % multiple if multiple else 0
    batch = {"input_ids": torch.tensor([ids + [pad_id] * fill]), "labels": torch.tensor([labels + [-100] * fill])}
    batch["position_ids"] = torch.tensor([position + [0] * fill])
    batch["labels"][batch["position_ids"] == 0] = -100
    batch["cu_seq_lens_q"] = torch.tensor([0, len(ids)])  # an extra key, as trl returns, to be ignored
    return batch


# --- one batch of a case -------------------------------------------------------------------------------
def build(family, layout="right", bug=None, turns=1):
    """(batch, options for check_batch) of one case."""
    tok = tokenizer(KIND[family])
    ids_of = tok.convert_tokens_to_ids
    end = ids_of(END[family])
    pad_id = end if "eos" in layout else ids_of("<|pad|>" if KIND[family] == "byte" else "<pad>")
    options = dict(vocab_size=len(tok), end_ids=[end], never_train_ids=[ids_of(t) for t in NEVER[family]])
    options["never_train_ids"] += [] if pad_id == end else [pad_id]
    template_options = dict(
        end_inside=bug != "end-outside", last_only="last-only" in layout, empty_inside=bug == "empty-think-inside"
    )
    if family.startswith("text"):  # plain prompt-completion rows; no-eos: a pipeline that does not append the EOS
        examples = [encode_text(family, prompt, completion, end=bug != "no-eos") for prompt, completion in TEXT]
    else:
        reasoning = family == "think" and bug != "empty-think-inside"
        examples = [encode(family, chat, **template_options) for chat in chats(turns, reasoning, tool=layout == "tool")]
    if bug == "shifted":  # targets x[1:] passed as labels: the model shifts again
        examples = [(ids, labels[1:] + [-100]) for ids, labels in examples]
    if bug == "user-turns-trained":  # trained from the first answer header on: later user turns too
        firsts = [next(t for t, y in enumerate(labels) if y != -100) for _, labels in examples]
        examples = [(ids, [-100] * first + ids[first:]) for (ids, _), first in zip(examples, firsts, strict=True)]
    for k in range(len(examples)) if bug in ("all-early", "all-late") else [1] if bug in ("early", "late") else []:
        ids, labels = examples[k]  # row 1's answers start a token early (header token trained) or late; or all rows'
        labels = list(labels)
        for first in [t for t, y in enumerate(labels) if y != -100 and (t == 0 or labels[t - 1] == -100)]:
            labels[first - 1 : first + 1] = [ids[first - 1], ids[first]] if "early" in bug else [-100, -100]
        examples[k] = (ids, labels)
    if layout == "tool":  # a tool's output inside the answer is not the model's text: masked
        lo, hi = ids_of("<tool>"), ids_of("</tool>")
        inside = lambda ids, t: lo in ids[: t + 1] and hi not in ids[:t]  # noqa: E731
        examples = [(ids, [-100 if inside(ids, t) else y for t, y in enumerate(y)]) for ids, y in examples]
    if layout.startswith("keep"):  # keep-start cuts the answer after 2 tokens (or inside the prompt); keep-end
        first = max(next(t for t, y in enumerate(labels) if y != -100) for _, labels in examples)  # keeps the ends
        cut = {"keep-start": slice(None, first + 2), "keep-end": slice(-14, None)}[layout.split(":")[0]]
        if layout.endswith(":prompt"):
            cut = slice(None, 6)
        examples = [(ids[cut], labels[cut]) for ids, labels in examples]
    if layout.startswith("packed") or layout.startswith("padfree"):
        if bug == "prompt-fills-budget":  # a document cut inside its prompt: 0 targets, packed anyway
            examples[0] = (examples[0][0][:6], examples[0][1][:6])
        batch = pack(examples, pad_id, boundaries="nobound" not in layout, multiple=16 if "padfree" in layout else None)
    else:
        batch = pad(examples, pad_id, side="left" if "left" in layout else "right")
    if bug == "pad-not-resized":  # a pad token added to the tokenizer, the model's embeddings not resized
        batch["input_ids"][batch["attention_mask"] == 0] = len(tok)
    if bug in ("labels-are-ids", "mask-dropped"):  # labels copied from input_ids (padding, headers, all trained)
        batch["labels"] = batch["input_ids"].clone()
    if bug == "full-text":  # a plain LM on the chats: every token is a target but the first of each document
        batch["labels"] = batch["input_ids"].clone()
        options["never_train_ids"] = []
    if bug == "full-text-pad-masked-by-value":  # transformers' DataCollatorForLanguageModeling with pad = EOS
        batch["labels"] = batch["input_ids"].masked_fill(batch["input_ids"] == pad_id, -100)
        options["never_train_ids"] = []
    if bug == "pad-masked-by-value":  # a collator that sets every pad id to -100: with pad = EOS, the ends too
        batch["labels"] = batch["labels"].masked_fill(batch["input_ids"] == pad_id, -100)
    if bug == "minus-one":  # the -1 trick with Hugging Face's -100 convention
        batch["labels"][batch["labels"] == -100] = -1
    if bug == "wrong-end-ids":  # the base model's EOS, which this template never writes
        options["end_ids"] = [ids_of("<|endoftext|>" if KIND[family] == "byte" else "<eos>")]
    if "nomask" in layout:
        del batch["attention_mask"]
    return batch, options


SOUND_LAYOUTS = ["right", "left", "right-eos", "left-eos", "nomask-eos", "keep-end", "packed", "packed-nobound",
                 "padfree-eos", "multi", "multi-last-only", "tool"]  # fmt: skip
FAMILIES = ["chatml", "llama3", "gemma", "think", "mistral"]
CASES = [(family, layout, None, set()) for family in FAMILIES for layout in SOUND_LAYOUTS]
CASES += [  # (family, layout, bug, the tags it must get)
    ("chatml", "right", "end-outside", {"end-not-trained"}),
    ("llama3", "right-eos", "end-outside", {"end-not-trained"}),
    ("gemma", "left", "end-outside", {"end-not-trained"}),
    ("think", "right", "end-outside", {"end-not-trained"}),
    ("mistral", "right", "end-outside", {"end-not-trained"}),  # a space token between the answer and </s>
    ("chatml", "multi", "end-outside", {"end-not-trained"}),
    ("llama3", "padfree-eos", "end-outside", {"end-not-trained"}),
    ("llama3", "right-eos", "pad-masked-by-value", {"end-not-trained"}),
    ("chatml", "right-eos", "pad-masked-by-value", {"end-not-trained"}),
    ("gemma", "nomask-eos", "pad-masked-by-value", {"end-not-trained"}),
    ("llama3", "right", "pad-masked-by-value", set()),  # a distinct pad: masking it by value is harmless
    ("chatml", "right", "labels-are-ids", {"pad-kept", "never-train"}),
    ("llama3", "left-eos", "labels-are-ids", {"pad-kept", "never-train"}),
    ("gemma", "right", "labels-are-ids", {"pad-kept", "never-train"}),
    ("chatml", "right", "shifted", {"shifted"}),
    ("gemma", "left-eos", "shifted", {"shifted"}),
    ("mistral", "right", "shifted", {"shifted"}),
    ("chatml", "right", "minus-one", {"out-of-range"}),
    ("llama3", "right", "pad-not-resized", {"input-out-of-range"}),
    ("gemma", "left", "pad-not-resized", {"input-out-of-range"}),
    ("chatml", "right", "wrong-end-ids", {"no-end"}),
    ("gemma", "right", "wrong-end-ids", {"no-end"}),
    ("chatml", "keep-start", None, {"no-end"}),  # answers cut mid-way: trained without their end
    ("llama3", "keep-start:prompt", None, {"no-target"}),
    ("gemma", "keep-start", None, {"no-end"}),
    ("chatml", "right", "early", {"span-start"}),
    ("llama3", "right-eos", "early", {"span-start"}),
    ("gemma", "right", "late", {"span-start"}),
    ("think", "right", "late", {"span-start"}),
    ("chatml", "multi", "user-turns-trained", {"never-train"}),
    ("gemma", "multi", "user-turns-trained", {"never-train"}),
    ("think", "right", "empty-think-inside", set()),  # trl's qwen3 template: invisible without the think ids listed
    ("chatml", "packed", "mask-dropped", {"never-train", "cross-doc"}),
    ("chatml", "packed-nobound", "mask-dropped", {"never-train"}),
    ("llama3", "packed", "full-text", {"cross-doc"}),
    ("gemma", "packed-nobound", "full-text", set()),  # one document as far as anyone can tell
    ("chatml", "packed", "prompt-fills-budget", {"no-target"}),
    ("chatml", "right-eos", "full-text-pad-masked-by-value", {"end-not-trained"}),
]
TEXT_LAYOUTS = ["right", "left", "right-eos", "left-eos", "nomask-eos", "padfree-eos", "packed", "packed-nobound",
                "keep-end"]  # fmt: skip
CASES += [(family, layout, None, set()) for family in ("text", "text-meta") for layout in TEXT_LAYOUTS]
CASES += [  # plain prompt-completion rows, each with a bug
    ("text", "right-eos", "pad-masked-by-value", {"end-not-trained"}),  # transformers' collator with pad = EOS
    ("text-meta", "nomask-eos", "pad-masked-by-value", {"end-not-trained"}),
    ("text", "right", "no-eos", {"no-end"}),  # a pipeline of your own that does not append the EOS
    ("text-meta", "left", "no-eos", {"no-end"}),
    ("text", "right", "shifted", {"shifted"}),
    ("text", "right", "labels-are-ids", {"pad-kept", "never-train"}),
    ("text", "right-eos", "labels-are-ids", {"pad-kept"}),
    ("text", "right", "minus-one", {"out-of-range"}),
    ("text", "right", "pad-not-resized", {"input-out-of-range"}),
    ("text", "keep-start", None, {"no-end"}),
    ("text", "keep-start:prompt", None, {"no-target", "no-end"}),  # 3 rows cut in the prompt, 1 in the answer
    ("text", "packed", "full-text", {"cross-doc"}),
    # A completion a token off in one row: plain rows have no chat turn, so [span-start] does not compare them
    # (their prompts end in any token); summarize_labels shows each row's opening (the test below).
    ("text", "right", "early", set()),
    ("text-meta", "right-eos", "late", set()),
]


GENERATION_PROMPT = {  # header_ids: what each template writes before an answer (tokenized as in the rows)
    "chatml": "<|im_start|>assistant\n",
    "think": "<|im_start|>assistant\n",  # then <think> (trained) or, with no reasoning, the empty block (not)
    "llama3": "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "gemma": "<start_of_turn>model\n",
    "mistral": "[/INST]",
}
# Bugs a shift every row shares, or one after which the whole text is trained: with header_ids, [span-start] too
WITH_HEADER = {"all-early": {"span-start"}, "all-late": {"span-start"}, "shifted": {"span-start"}}
WITH_HEADER["full-text-pad-masked-by-value"] = {"span-start"}  # each answer's header is trained
CASES += [(family, "right", bug, set()) for family in ("chatml", "gemma") for bug in ("all-early", "all-late")]
CASES += [("llama3", "multi", "all-late", set()), ("think", "right-eos", "all-early", set()),
          ("mistral", "padfree-eos", "all-late", set())]  # fmt: skip


@pytest.mark.parametrize("family, layout, bug, tags", CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_each_batch_gets_exactly_its_tags(family, layout, bug, tags):
    turns = 2 if layout.startswith("multi") or bug == "user-turns-trained" else 1
    batch, options = build(family, layout, bug, turns)
    findings = check_batch(batch, decode=tokenizer(KIND[family]).decode, **options)
    assert {f.tag for f in findings} == tags, "\n".join(findings)
    assert all(re.fullmatch(r"\[[a-z-]+\] (row \d+.*|… and \d+ more rows like these)", f) for f in findings)
    if family in GENERATION_PROMPT:  # given header_ids, a shift every row shares is flagged; nothing else changes
        tok = tokenizer(KIND[family])
        header = tok(GENERATION_PROMPT[family], add_special_tokens=False)["input_ids"]
        findings = check_batch(batch, decode=tok.decode, header_ids=header, **options)
        assert {f.tag for f in findings} == tags | WITH_HEADER.get(bug, set()), "\n".join(findings)


def test_header_ids_found_in_no_untrained_stretch_before_an_answer_flag_every_answer():
    """Ids that are not the template's (here a system header, where the chats have none; or ids tokenized unlike the
    rows) would check nothing: every answer is flagged, with a message that names header_ids as the doubt."""
    tok = tokenizer("byte")
    batch, options = build("chatml", "multi", turns=2)
    wrong = tok("<|im_start|>system\n")["input_ids"]
    findings = check_batch(batch, header_ids=wrong, decode=tok.decode, **options)
    assert {f.tag for f in findings} == {"span-start"} and findings[-1] == "[span-start] … and 1 more rows like these"
    doubt = "'\\n' come right before no answer: take them as a row holds them (show_labels shows the tokens before"
    assert doubt in findings[0] and "with no BOS (add_special_tokens=False)" in findings[0], findings[0]
    user = tok("<|im_start|>user\n")["input_ids"]  # before every second answer, so they are the template's
    assert check_batch(batch, header_ids=user, **options) == []


def test_the_matrix_has_at_least_40_batches_each_family_sound_and_broken():
    assert len(CASES) >= 40
    assert all(any(c[0] == f and c[3] for c in CASES) for f in [*FAMILIES, "text", "text-meta"])


def test_a_plain_completion_a_token_off_is_not_compared_but_the_summary_shows_its_opening():
    batch, options = build("text", "right", "early")
    assert check_batch(batch, **options) == []
    lines = summarize_labels(
        batch["input_ids"], batch["labels"], batch["attention_mask"], decode=tokenizer("byte").decode
    )
    assert lines[1].endswith("the first opens The  sun [ is] [ hot]") and lines[0].endswith(
        "sky  is [ blue] [<|endoftext|>]"
    )


def test_trl_documentation_example_prompts_that_end_alike_give_no_finding_as_trl_batches_them():
    """trl's own prompt-completion example (the rows that made the old header comparison cry wolf): its last prompt
    token ' is' is most rows' and ' red' ends one prompt and starts another completion."""
    batch, options = build("text", "right-eos")
    shown = show_labels(batch["input_ids"], batch["labels"], 3, decode=tokenizer("byte").decode)
    assert shown.startswith("The moon is red[,][ not][ blue][.][<|endoftext|>]") and check_batch(batch, **options) == []


def test_the_summary_shows_a_dropped_mask_as_every_token_trained():
    batch, _ = build("chatml", "packed-nobound", "mask-dropped")
    (line,) = summarize_labels(batch["input_ids"], batch["labels"])
    n, of = map(int, re.match(r"row 0: (\d+) of (\d+) real", line).groups())
    assert n == of - 1


def test_show_labels_keeps_the_spaces_a_metaspace_tokenizer_drops_from_a_token_decoded_alone():
    ids, labels = encode("gemma", chats()[0])
    decode = tokenizer("meta").decode
    shown = show_labels(torch.tensor(ids), torch.tensor(labels), decode=decode)
    assert "user\\nWhat is red plus green?" in shown and "[red][ green][<end_of_turn>]" in shown
    assert "Whatisredplusgreen?" in "".join(decode([i]) for i in ids)  # each token alone: the spaces are gone


def test_batches_from_transformers_own_collators():
    from transformers import DataCollatorForLanguageModeling, DataCollatorWithFlattening

    tok = tokenizer("byte")
    end = tok.convert_tokens_to_ids("<|im_end|>")
    examples = [dict(zip(("input_ids", "labels"), encode("chatml", chat), strict=True)) for chat in chats()]
    options = dict(end_ids=[end], never_train_ids=[tok.convert_tokens_to_ids("<|im_start|>")], vocab_size=len(tok))
    flat = DataCollatorWithFlattening()(examples)  # input_ids, labels, position_ids; no attention_mask
    assert "attention_mask" not in flat and check_batch(flat, **options) == []
    eos_padded = copy.deepcopy(tok)
    eos_padded.pad_token = "<|im_end|>"  # no pad token of its own: pad = EOS
    full_text = DataCollatorForLanguageModeling(eos_padded, mlm=False)(
        [{"input_ids": e["input_ids"]} for e in examples]
    )
    assert {f.tag for f in check_batch(full_text, end_ids=[end], vocab_size=len(tok))} == {"end-not-trained"}
