"""Every line of a library's source that a notebook cites, in one table: ``QUOTES``.

The notebooks cite trl and transformers by file and line ("`trl/trainer/sft_trainer.py`, lines 948 to 957")
or by file and name ("`ForCTCLoss` in `transformers/loss/loss_ctc.py`"). Each citation is registered here
with the release it was read at and the text of the lines it points at, so that a machine can check it:

- ``tests/test_canary.py`` fails when a notebook's text cites a line (or a trl or transformers file) that is
  not in this table, when an entry here is no longer cited, and when a transformers entry's text is not at
  its line in the installed transformers;
- ``make canary`` (``tools/canary.py``) checks every entry against the release it was read at and against
  the newest release, and reports each as unchanged, moved (to another line or file) or gone.

A new citation: read the lines in the released wheel (``pip download --no-deps trl==1.16.0``, unzip it),
add a ``Quote`` here, and cite the same line numbers and release in the notebook.
"""

# A quoted line is kept whole, however long.
# ruff: noqa: E501

from dataclasses import dataclass


@dataclass(frozen=True)
class Quote:
    notebook: str  # the notebook whose markdown cites it
    library: str  # the distribution on PyPI
    version: str  # the release it was read at
    file: str  # the path in the installed package (relative to site-packages)
    line: int  # the first line cited, in that release
    text: tuple[str, ...]  # the lines, each without its indentation (blank lines as "")
    shown: str = ""  # what the notebook's text shows of these lines (spaces aside), where it shows some
    cited: str = "line"  # "line": the notebook names the line; "file": only the file (the line is where it was read)

    @property
    def last(self):
        """The last line cited."""
        return self.line + len(self.text) - 1

    @property
    def lines(self):
        """The line or range, as a reader would say it."""
        return f"line {self.line}" if self.last == self.line else f"lines {self.line}–{self.last}"


QUOTES = [
    Quote(
        notebook="09_debugging_masks.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/chat_template_utils.py",
        line=927,
        text=("def is_chat_template_stop_token_trained(",),
        shown="is_chat_template_stop_token_trained",
    ),
    Quote(
        notebook="09_debugging_masks.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/sft_trainer.py",
        line=948,
        text=(
            "if args.assistant_only_loss and not is_chat_template_stop_token_trained(",
            "processing_class, chat_template=self.chat_template",
            "):",
            "logger.warning(",
            '"The chat template does not include the assistant turn\'s end-of-turn token in the loss mask; "',
            '"the model may not learn to stop. The training loss still looks healthy, so this usually only "',
            '"surfaces at inference. Either set `assistant_only_loss=False` to train on the full sequence, "',
            '"or edit the chat template so the end-of-turn token falls inside "',
            '"`{% generation %}...{% endgeneration %}`."',
            ")",
        ),
        shown="the model may not learn to stop",
    ),
    Quote(
        notebook="09_debugging_masks.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/sft_trainer.py",
        line=1456,
        text=(
            "# Drop examples left fully masked by truncation (e.g. a prompt alone filling `max_length` with",
            '# `truncation_mode="keep_start"`), since they contribute no loss.',
            "if isinstance(dataset, Dataset):  # `IterableDataset.filter` does not support `desc`",
            'map_kwargs["desc"] = f"Dropping fully masked examples from {dataset_name} dataset"',
            "",
            "dataset = dataset.filter(",
            'lambda example: any(label != -100 for label in example["labels"]), **map_kwargs',
            ")",
        ),
        shown="dataset.filter(lambda example: any(label != -100",
    ),
    Quote(
        notebook="09_debugging_masks.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/sft_trainer.py",
        line=1459,
        text=('map_kwargs["desc"] = f"Dropping fully masked examples from {dataset_name} dataset"',),
        shown="Dropping fully masked examples",
    ),
    Quote(
        notebook="09_debugging_masks.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/sft_trainer.py",
        line=1439,
        text=("if args.max_length is not None and not packing:",),
        shown="if args.max_length is not None and not packing",
    ),
    Quote(
        notebook="09_debugging_masks.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/data_utils.py",
        line=746,
        text=("columns = [pc.list_slice(column, 0, seq_length) for column in columns]",),
    ),
    Quote(
        notebook="09_debugging_masks.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/sft_trainer.py",
        line=1472,
        text=('dataset = dataset.select_columns(["input_ids", "labels"])',),
        shown='dataset.select_columns(["input_ids", "labels"])',
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_trainer.py",
        line=3154,
        text=("loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()",),
        shown="loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_trainer.py",
        line=3159,
        text=("loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)",),
        shown="loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_trainer.py",
        line=3164,
        text=("loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * self.max_completion_length)",),
        shown="loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * self.max_completion_length)",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_trainer.py",
        line=3170,
        text=('normalizer = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes',),
        shown='normalizer = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes',
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_trainer.py",
        line=3173,
        text=("loss = (per_token_loss * mask).sum() / normalizer",),
        shown="loss = (per_token_loss * mask).sum() / normalizer",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_config.py",
        line=801,
        text=("loss_type: str = field(", 'default="dapo",'),
        shown='"dapo"',
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_trainer.py",
        line=2497,
        text=(
            "loss_mask = completion_mask if tool_mask is None else completion_mask * tool_mask",
            "num_items_in_batch = self.accelerator.gather(loss_mask.sum()).sum()",
        ),
        shown="num_items_in_batch",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_trainer.py",
        line=3171,
        text=(
            'if mode == "train":  # in eval, the batch is neither split across steps nor accumulated',
            "normalizer = normalizer * self.current_gradient_accumulation_steps / self.args.steps_per_generation",
        ),
        shown="current_gradient_accumulation_steps",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_config.py",
        line=240,
        text=(
            '- `"grpo"`: Aggregates token-level losses by normalizing over sequence length. Not recommended due to',
            "length bias—this approach tends to prefer shorter completions with positive advantages and longer ones",
            "with negative advantages.",
        ),
        shown="due to length bias—this approach tends to prefer shorter completions with positive advantages and longer ones with negative advantages",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_config.py",
        line=269,
        text=(
            "When enabled, truncated completions are excluded from the loss calculation, preventing them from being",
            "incorrectly penalized and introducing noise during training. According to the",
            "[DAPO](https://huggingface.co/papers/2503.14476) paper, this is a good practice for training stability.",
        ),
        shown="a good practice for training stability",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_trainer.py",
        line=2489,
        text=(
            "eos_and_pad = [*self.eos_token_ids, self._tokenizer.pad_token_id]",
            "is_truncated = torch.tensor([ids[-1] not in eos_and_pad for ids in completion_ids_list], device=device)",
            "# Mask completion_mask for attention masking",
            "completion_mask = completion_mask * (~is_truncated).unsqueeze(1).int()",
            "# Also mask tool_mask for consistency in multi-turn training",
            "if tool_mask is not None:",
            "tool_mask = tool_mask * (~is_truncated).unsqueeze(1).int()",
            "",
            "loss_mask = completion_mask if tool_mask is None else completion_mask * tool_mask",
            "num_items_in_batch = self.accelerator.gather(loss_mask.sum()).sum()",
        ),
        shown="num_items_in_batch",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_trainer.py",
        line=3100,
        text=(
            "per_token_kl = (",
            "torch.exp(ref_per_token_logps - per_token_logps) - (ref_per_token_logps - per_token_logps) - 1",
            ")",
        ),
        shown="per_token_kl",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/grpo_trainer.py",
        line=3150,
        text=("per_token_loss = per_token_loss + self.beta * per_token_kl",),
        shown="beta * per_token_kl",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/dpo_trainer.py",
        line=1298,
        text=('labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)',),
        shown='labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)',
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/utils.py",
        line=1548,
        text=("def add_fused_lm_head(",),
        shown="add_fused_lm_head",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/dpo_trainer.py",
        line=960,
        text=(
            "add_fused_lm_head(self.model.get_base_model() if is_peft_model(self.model) else self.model, outputs=outputs)",
        ),
        shown="add_fused_lm_head",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/dpo_trainer.py",
        line=1304,
        text=("logps = per_token_logps.sum(dim=1)  # sum over sequence length",),
        shown="logps = per_token_logps.sum(dim=1)",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/dpo_trainer.py",
        line=1400,
        text=(
            "chosen_avg_score = chosen_scores / chosen_mask.sum(dim=1).clamp(min=1.0)",
            "rejected_avg_score = rejected_scores / rejected_mask.sum(dim=1).clamp(min=1.0)",
        ),
        shown="chosen_mask.sum(dim=1).clamp(min=1.0)",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/dpo_trainer.py",
        line=1506,
        text=(
            "chosen_avg_score = chosen_scores / chosen_mask.sum(dim=1).clamp(min=1.0)",
            "rejected_avg_score = rejected_scores / rejected_mask.sum(dim=1).clamp(min=1.0)",
        ),
        shown="rejected_mask.sum(dim=1).clamp(min=1.0)",
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="trl",
        version="1.16.0",
        file="trl/trainer/dpo_trainer.py",
        line=1134,
        text=(
            "# Drop examples whose prompt alone fills `max_length`: with `keep_start` truncation the collator would",
            "# remove every completion token, leaving no learning signal. `keep_end` keeps the completion end, so",
            "# nothing is dropped there.",
            'if args.max_length is not None and args.truncation_mode == "keep_start":',
            "if isinstance(dataset, Dataset):  # `IterableDataset.filter` does not support `desc`",
            'map_kwargs["desc"] = f"Dropping fully truncated examples from {dataset_name} dataset"',
            'dataset = dataset.filter(lambda example: len(example["prompt_ids"]) < args.max_length, **map_kwargs)',
        ),
        shown='"keep_start"',
    ),
    Quote(
        notebook="10_masks_in_rl_finetuning.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/modeling_layers.py",
        line=175,
        text=(
            "# To handle both left- and right- padding, we take the rightmost token that is not equal to pad_token_id",
            "non_pad_mask = (input_ids != self.config.get_text_config().pad_token_id).to(logits.device, torch.int32)",
            "token_indices = torch.arange(input_ids.shape[-1], device=logits.device, dtype=torch.int32)",
            "last_non_pad_token = (token_indices * non_pad_mask).argmax(-1)",
        ),
        shown="the rightmost token that is not equal to pad_token_id",
    ),
    Quote(
        notebook="06_masks_in_transformers.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/trainer.py",
        line=1819,
        text=("def _run_epoch(",),
        shown="_run_epoch",
        cited="file",
    ),
    Quote(
        notebook="06_masks_in_transformers.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/trainer.py",
        line=1935,
        text=("self.optimizer.step()",),
        shown="optimizer.step()",
        cited="file",
    ),
    Quote(
        notebook="06_masks_in_transformers.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/training_args.py",
        line=1025,
        text=(
            '"help": "Filter out NaN and Inf training and evaluation losses when logging. Does not affect gradient computation, only logging."',
        ),
        shown="Does not affect gradient computation, only logging",
        cited="file",
    ),
    Quote(
        notebook="06_masks_in_transformers.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/masking_utils.py",
        line=903,
        text=("def create_causal_mask(",),
        shown="create_causal_mask",
        cited="file",
    ),
    Quote(
        notebook="06_masks_in_transformers.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/masking_utils.py",
        line=750,
        text=("def find_packed_sequence_indices(position_ids: torch.Tensor) -> torch.Tensor | None:",),
        shown="find_packed_sequence_indices",
        cited="file",
    ),
    Quote(
        notebook="06_masks_in_transformers.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/utils/generic.py",
        line=1013,
        text=("def merge_with_config_defaults(func):",),
        shown="merge_with_config_defaults",
        cited="file",
    ),
    Quote(
        notebook="06_masks_in_transformers.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/loss/loss_utils.py",
        line=51,
        text=("def ForCausalLMLoss(",),
        shown="ForCausalLMLoss",
        cited="file",
    ),
    Quote(
        notebook="06_masks_in_transformers.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/modeling_utils.py",
        line=5089,
        text=(
            "def slice_logits_to_keep(hidden_states: torch.Tensor, logits_to_keep: int | torch.Tensor) -> torch.Tensor:",
        ),
        shown="slice_logits_to_keep",
        cited="file",
    ),
    Quote(
        notebook="08_masks_beyond_next_token.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/data/data_collator.py",
        line=800,
        text=("def torch_mask_tokens(",),
        shown="torch_mask_tokens",
        cited="file",
    ),
    Quote(
        notebook="08_masks_beyond_next_token.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/models/t5/modeling_t5.py",
        line=618,
        text=("def _shift_right(self, input_ids):",),
        shown="_shift_right",
        cited="file",
    ),
    Quote(
        notebook="08_masks_beyond_next_token.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/loss/loss_ctc.py",
        line=46,
        text=(
            "labels_mask = (labels != ignore_index) & (labels != blank_token_id)",
            "target_lengths = labels_mask.sum(-1)",
        ),
        shown="target_lengths = labels_mask.sum(-1)",
        cited="file",
    ),
    Quote(
        notebook="08_masks_beyond_next_token.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/trainer.py",
        line=517,
        text=(
            'if hasattr(unwrapped_model, "accepts_loss_kwargs"):',
            "self.model_accepts_loss_kwargs = unwrapped_model.accepts_loss_kwargs",
            "else:",
            "forward_params = inspect.signature(unwrapped_model.forward).parameters",
            "self.model_accepts_loss_kwargs = any(",
            "k.kind == inspect.Parameter.VAR_KEYWORD for k in forward_params.values()",
            ")",
        ),
    ),
    Quote(
        notebook="08_masks_beyond_next_token.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/trainer.py",
        line=2107,
        text=(
            "loss_is_scaled_for_ga = (",
            "self.model_accepts_loss_kwargs and num_items_in_batch is not None",
            ") or self.compute_loss_func is not None",
            "if not loss_is_scaled_for_ga:",
            "loss = loss / self.current_gradient_accumulation_steps",
        ),
    ),
    Quote(
        notebook="08_masks_beyond_next_token.ipynb",
        library="transformers",
        version="5.23.0",
        file="transformers/trainer.py",
        line=2155,
        text=(
            'if (self.label_smoother is not None or self.compute_loss_func is not None) and "labels" in inputs:',
            'labels = inputs.pop("labels")',
        ),
    ),
]
