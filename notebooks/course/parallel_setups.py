"""Notebook 11's small models, batches and single-process references, shared by its worker and its checkers.

Every parallel run in ``course.parallel_worker`` has a reference here: the same model (same seed) on the
whole batch in one process, with the token mean over every kept target, ``F.cross_entropy(ignore_index=-100)``.
``rel_err`` and ``proj_ratio`` compare a gradient with its reference: ``proj_ratio`` is exactly the factor
when the error is a pure scaling, and 1 with ``rel_err`` near 1e-7 means equal (float32).

>>> loss, grad = fsdp_reference()
>>> round(proj_ratio(grad, grad), 4), rel_err(grad, grad)
(1.0, 0.0)
"""

import torch
import torch.nn.functional as F
from torch import nn

FEATURES, HIDDEN, CLASSES = 8, 16, 10  # the MLP of FSDP and pipeline parallel: Linear(8, 16), Tanh, Linear(16, 10)
FSDP_KEPT = (3, 9)  # kept targets on rank 0 and rank 1, of FSDP_POSITIONS each
FSDP_POSITIONS = 12
PP_KEPT = (2, 6, 1, 3)  # kept targets of the 4 sequences (one per micro-batch), of PP_POSITIONS each
PP_POSITIONS = 6
VOCAB, LENGTH, PAD = 10, 8, 0  # context parallel: token ids 1..9, sequences of 8 positions, id 0 pads
CP_LENGTHS = (8, 5)  # real tokens of the two sequences of the context-parallel demonstration
EMPTY_LENGTHS = (3,)  # one sequence whose kept targets all land on one context-parallel rank
DP_CP_LENGTHS = ((8, 7), (3, 5))  # DP x CP: the sequences of data-parallel replica 0, then of replica 1
VOCAB_TARGETS = (3, 7, -100, 9, -100, 0)  # vocabulary-parallel cross-entropy: 6 rows, 10 classes, 2 ignored


def make_mlp():
    """The per-position MLP that FSDP shards and that pipeline parallel cuts after the Tanh."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, CLASSES))


def make_token_model():
    """A per-position language model (Embedding, Tanh, Linear): each position's logits depend on its token only,
    so a sequence cut into context-parallel shards gives exactly the logits of the whole sequence."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(VOCAB, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, VOCAB))


def flat_grad(parameters):
    """Every parameter's gradient in one vector (zeros where there is none)."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in parameters])


def rel_err(grad, ref):
    """‖grad − ref‖ / ‖ref‖."""
    return ((grad - ref).norm() / ref.norm()).item()


def proj_ratio(grad, ref):
    """⟨grad, ref⟩ / ⟨ref, ref⟩: the factor, when grad is ref times a number."""
    grad, ref = grad.flatten(), ref.flatten()
    return (grad.dot(ref) / ref.dot(ref)).item()


def _prefix_kept(targets, kept):
    """targets with -100 after the first kept[i] positions of row i."""
    return targets.masked_fill(torch.arange(targets.shape[-1]) >= torch.tensor(kept)[:, None], -100)


def fsdp_batch():
    """Inputs (2, 12, 8) and targets (2, 12): rank r's share is row r; rank 0 keeps 3 targets, rank 1 keeps 9."""
    gen = torch.Generator().manual_seed(1)
    inputs = torch.randn(len(FSDP_KEPT), FSDP_POSITIONS, FEATURES, generator=gen)
    targets = torch.randint(0, CLASSES, (len(FSDP_KEPT), FSDP_POSITIONS), generator=gen)
    return inputs, _prefix_kept(targets, FSDP_KEPT)


def pp_batch():
    """Inputs (4, 6, 8) and targets (4, 6): 4 sequences, one per micro-batch, keeping 2, 6, 1 and 3 targets."""
    gen = torch.Generator().manual_seed(2)
    inputs = torch.randn(len(PP_KEPT), PP_POSITIONS, FEATURES, generator=gen)
    targets = torch.randint(0, CLASSES, (len(PP_KEPT), PP_POSITIONS), generator=gen)
    return inputs, _prefix_kept(targets, PP_KEPT)


def token_batch(lengths, seed=3):
    """Token ids (B, 8) padded with 0 after each sequence's length, and Hugging Face-style labels: the ids, with
    -100 at the padding. Labels are not shifted: position t is trained to predict labels[t + 1]."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (len(lengths), LENGTH), generator=gen)
    padding = torch.arange(LENGTH) >= torch.tensor(lengths)[:, None]
    return ids.masked_fill(padding, PAD), ids.masked_fill(padding, -100)


def shift(labels):
    """Next-token targets: labels[:, t + 1] at position t, -100 at the last position."""
    return torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], -100)], dim=1)


def layout(name, cp, length=LENGTH):
    """The positions each of ``cp`` context-parallel ranks holds: ``"head-tail"`` (torch's load balancer: rank r
    holds chunk r and chunk 2·cp − 1 − r of 2·cp chunks) or ``"contiguous"`` (rank r holds the r-th of cp chunks)."""
    if name == "contiguous":
        return list(torch.arange(length).chunk(cp))
    if name != "head-tail":
        raise ValueError(f"layout must be 'head-tail' or 'contiguous', got {name!r}")
    if length % (2 * cp):
        raise ValueError(f"head-tail needs a length divisible by 2 * cp = {2 * cp}, got {length}")
    chunks = torch.arange(length).chunk(2 * cp)
    return [torch.cat([chunks[r], chunks[2 * cp - 1 - r]]) for r in range(cp)]


def shift_errors(local_targets, positions, global_targets):
    """Where each rank's targets differ from the globally shifted ones at the same positions.

    ``local_targets[r]`` (B, T/cp) are rank r's targets for its ``positions[r]``; returns ``lost`` (a kept
    target that became -100) and ``wrong`` (a target other than the one at that position), as lists of
    ``(sequence, position)`` and ``(sequence, position, got, wanted)``.
    """
    lost, wrong = [], []
    for got, where in zip(local_targets, positions, strict=True):
        want = global_targets[:, where]
        for b, t in ((want != -100) & (got == -100)).nonzero().tolist():
            lost.append((b, int(where[t])))
        for b, t in ((got != -100) & (got != want)).nonzero().tolist():
            wrong.append((b, int(where[t]), int(got[b, t]), int(want[b, t])))
    return sorted(lost), sorted(wrong)


def _token_mean(model, inputs, targets):
    """Loss and flat gradient of the token mean of the whole batch, in one process."""
    loss = F.cross_entropy(model(inputs).flatten(0, -2), targets.flatten(), ignore_index=-100)
    loss.backward()
    return loss.item(), flat_grad(model.parameters())


def fsdp_reference():
    """One process, both ranks' rows together: loss and gradient of the token mean (K = 12)."""
    return _token_mean(make_mlp(), *fsdp_batch())


def fsdp_local_grads():
    """The gradient of each rank's own mean, computed in one process: what each rank backprops before FSDP reduces."""
    inputs, targets = fsdp_batch()
    return [_token_mean(make_mlp(), inputs[r], targets[r])[1] for r in range(len(FSDP_KEPT))]


def pp_reference():
    """One process, the whole batch of 4 sequences: loss and gradient of the token mean (K = 12)."""
    return _token_mean(make_mlp(), *pp_batch())


def pp_step_grads(steps):
    """One process: the gradient of each accumulated step()'s share of the token mean, its rows' summed loss over
    the K of the whole batch (the batch cut into ``steps`` equal parts, as the worker's accumulation cases cut it)."""
    inputs, targets = pp_batch()
    count = (targets != -100).sum()
    grads = []
    for x, y in zip(inputs.tensor_split(steps), targets.tensor_split(steps), strict=True):
        model = make_mlp()
        (F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="sum") / count).backward()
        grads.append(flat_grad(model.parameters()))
    return grads


def token_reference(lengths):
    """One process, whole sequences, targets shifted globally: loss and gradient of the token mean."""
    ids, labels = token_batch(lengths)
    return _token_mean(make_token_model(), ids, shift(labels))


def vocab_logits():
    """The (6, 10) logits of the vocabulary-parallel demonstration; rank r holds columns 5r to 5r + 4."""
    return torch.randn(len(VOCAB_TARGETS), VOCAB, generator=torch.Generator().manual_seed(4)) * 2


def vocab_reference():
    """Per-row losses (0 where ignored), their token mean, and its gradient on the logits."""
    logits, targets = vocab_logits().requires_grad_(), torch.tensor(VOCAB_TARGETS)
    rows = F.cross_entropy(logits, targets, reduction="none")
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    return rows.detach(), loss.item(), logits.grad


class VocabParallelCrossEntropy(torch.autograd.Function):
    """Megatron-LM's vocabulary-parallel cross-entropy (megatron/core/tensor_parallel/cross_entropy.py), written
    against ``all_reduce(tensor, op)`` (op ``"max"`` or ``"sum"``, in place over the tensor-parallel group).

    Each rank holds ``local_logits`` (N, V/tp), the columns ``vocab_start`` onwards; every rank holds the same
    ``target`` (N,). Returns one loss per row, logsumexp(x) − x[target], with **no** ``ignore_index``: a
    target outside this rank's columns, -100 included, gets a predicted logit of 0 here, and the sum over
    ranks then gives 0 (after the max shift) for a target no rank holds. Backward: softmax − one-hot(target).
    """

    @staticmethod
    def forward(ctx, local_logits, target, vocab_start, all_reduce):
        logits = local_logits.detach().clone()
        row_max = logits.max(dim=-1).values
        all_reduce(row_max, "max")
        logits -= row_max[:, None]
        elsewhere = (target < vocab_start) | (target >= vocab_start + logits.shape[-1])  # Megatron's target_mask
        local_target = (target - vocab_start).masked_fill(elsewhere, 0)
        predicted = logits.gather(1, local_target[:, None]).squeeze(1).masked_fill(elsewhere, 0.0)
        all_reduce(predicted, "sum")
        exp = logits.exp()
        sum_exp = exp.sum(dim=-1)
        all_reduce(sum_exp, "sum")
        ctx.save_for_backward(exp / sum_exp[:, None], elsewhere, local_target)
        return sum_exp.log() - predicted

    @staticmethod
    def backward(ctx, grad_rows):
        softmax, elsewhere, local_target = ctx.saved_tensors
        grad = softmax.clone()
        grad[torch.arange(len(grad)), local_target] -= (~elsewhere).float()  # − one-hot, on the owner's columns only
        return grad * grad_rows[:, None], None, None, None
