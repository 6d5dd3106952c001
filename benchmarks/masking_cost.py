"""What masking costs on your machine: time of three ways to mask, and memory of a full versus a chunked loss.

    python benchmarks/masking_cost.py --device cpu                  # default sizes (a minute or two on a laptop)
    python benchmarks/masking_cost.py --device cuda --sizes 4096x32768,16384x128256 --hidden 1024 --min-run-time 0.3
    python benchmarks/masking_cost.py --quick                       # tiny sizes, a few seconds (the tests run it)

Table 1 times the loss alone, on given logits, in float32 with half of the targets kept (--kept):
`ignore_index`, boolean selection `logits[mask]`, and `reduction='none'` x mask / count; forward, and
forward + backward. Table 2 adds the output projection `hidden @ weight.T` (hidden size --hidden): all rows
then `ignore_index`, the kept rows only, and a chunked cross-entropy (notebook 07). It reports the bytes
autograd saves for the backward pass and, on CUDA, the peak over forward + backward
(`torch.cuda.max_memory_allocated`). `torch.utils.benchmark` synchronises CUDA around each timing.
CPU timings use one thread by default, as notebook 07 does (--threads to change it).

The figures that notebook 07 quotes from one H200 GPU (sections 5 and 7) came from the second command above.
"""

import argparse
import weakref

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.utils import benchmark

WAYS = {
    "ignore_index": lambda logits, targets, mask: F.cross_entropy(logits, targets),
    "boolean selection": lambda logits, targets, mask: F.cross_entropy(logits[mask], targets[mask]),
    "none x mask": lambda logits, targets, mask: (
        (F.cross_entropy(logits, targets, reduction="none") * mask).sum() / mask.sum().clamp(min=1)
    ),
}


class ChunkedCrossEntropy(torch.autograd.Function):
    """Token-mean cross-entropy of hidden @ weight.T (-100 ignored), chunk_size rows at a time (notebook 07).

    Each chunk's gradients are computed in the forward pass, so no chunk's logits outlive it; with
    ``grad_enabled`` False (use ``chunked_cross_entropy``, which passes the caller's grad mode) the forward
    pass only scores the chunks. The backward pass scales stored numbers: it is once differentiable.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_size, grad_enabled=True):
        count = (targets != -100).sum().clamp(min=1)
        wants_grad = grad_enabled and any(ctx.needs_input_grad[:2])  # forward() itself always runs without grad
        loss = hidden.new_zeros(())
        grad_hidden, grad_weight = (torch.zeros_like(t) if wants_grad else None for t in (hidden, weight))
        for start in range(0, len(hidden), chunk_size):
            h, y = hidden[start : start + chunk_size], targets[start : start + chunk_size]
            if not wants_grad:
                loss += F.cross_entropy(h @ weight.T, y, reduction="sum") / count
                continue
            with torch.enable_grad():
                h, w = h.detach().requires_grad_(), weight.detach().requires_grad_()
                part = F.cross_entropy(h @ w.T, y, reduction="sum") / count
                grad_h, grad_w = torch.autograd.grad(part, (h, w))
            loss += part.detach()
            grad_hidden[start : start + chunk_size] = grad_h
            grad_weight += grad_w
        if wants_grad:
            ctx.save_for_backward(grad_hidden, grad_weight)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_loss * grad_hidden, grad_loss * grad_weight, None, None, None


def chunked_cross_entropy(hidden, weight, targets, chunk_size):
    """ChunkedCrossEntropy, told whether gradients are on where it is called (under torch.no_grad() it only scores)."""
    return ChunkedCrossEntropy.apply(hidden, weight, targets, chunk_size, torch.is_grad_enabled())


def parse_sizes(text):
    try:
        sizes = [tuple(int(n) for n in item.lower().split("x")) for item in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(len(s) != 2 or min(s) < 1 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"expected sizes like 2048x1024,8192x32768 (tokens x vocabulary), got {text!r}"
        )
    return sizes


def milliseconds(stmt, env, min_run_time, threads):
    timer = benchmark.Timer(stmt, globals={"torch": torch, **env}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def saved_for_backward(loss_fn, inputs):
    """The loss, and the bytes of tensors autograd still holds for the backward pass (inputs excluded)."""
    saved = []

    def pack(t):
        saved.append(weakref.ref(t))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn()
    live = (r() for r in saved)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in live if t is not None}
    for t in inputs:
        storages.pop(t.untyped_storage().data_ptr(), None)
    return loss, sum(storages.values())


def cuda_peak(loss_fn, inputs):
    """Peak CUDA memory allocated during one forward and backward pass, above what was allocated before."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    torch.autograd.grad(loss_fn(), inputs)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def projection_losses(hidden, weight, targets, mask, chunk):
    """The three ways to compute the token-mean loss of hidden @ weight.T, as functions of nothing."""
    return {
        "project all rows": lambda: F.cross_entropy(hidden @ weight.T, targets),
        "project kept rows": lambda: F.cross_entropy(hidden[mask] @ weight.T, targets[mask]),
        f"chunked ({chunk} rows)": lambda: chunked_cross_entropy(hidden, weight, targets, chunk),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--sizes", type=parse_sizes, default="2048x1024,4096x8192,8192x32768", help="tokens x vocab")
    parser.add_argument("--kept", type=float, default=0.5, help="fraction of targets kept (default 0.5)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of the projection in table 2")
    parser.add_argument("--chunk", type=int, default=1024, help="rows per chunk of the chunked loss")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for timing (default 1, as notebook 07)")
    parser.add_argument("--min-run-time", type=float, default=0.2, help="seconds per timing (torch.utils.benchmark)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and short timings, to check the script")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.chunk, args.min_run_time = [(256, 512), (512, 1024)], 128, 0.01
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available here")
    if not 0 < args.kept <= 1:
        parser.error(f"--kept must be in (0, 1], got {args.kept}")
    device, gen = torch.device(args.device), torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {device.type}, {args.threads} thread(s), float32, kept {args.kept:.0%}")
    if args.quick:
        print("--quick: sizes this small time mostly overhead; this run checks the script, not the costs")

    print("\n1. The loss on given logits, ms (median)")
    print(f"{'tokens x vocab':>15}  {'way':18} {'forward':>9} {'fwd + bwd':>10}")
    for tokens, vocab in args.sizes:
        mask = torch.rand(tokens, generator=gen) < args.kept
        targets = torch.randint(0, vocab, (tokens,), generator=gen).masked_fill(~mask, -100)
        logits = torch.randn(tokens, vocab, generator=gen)
        env = {"logits": logits.to(device).requires_grad_(), "targets": targets.to(device), "mask": mask.to(device)}
        for name, way in WAYS.items():
            env["way"] = way
            forward = milliseconds("way(logits, targets, mask)", env, args.min_run_time, args.threads)
            both = milliseconds(
                "torch.autograd.grad(way(logits, targets, mask), logits)", env, args.min_run_time, args.threads
            )
            print(f"{tokens:>7}x{vocab:<7}  {name:18} {forward:9.2f} {both:10.2f}")
        del env, logits

    print(f"\n2. Projection (hidden size {args.hidden}) and loss, forward + backward")
    peak_header = f" {'peak MB':>8}" if device.type == "cuda" else ""
    print(f"{'tokens x vocab':>15}  {'loss':22} {'ms':>9} {'saved for bwd MB':>17}{peak_header}")
    for tokens, vocab in args.sizes:
        mask = torch.rand(tokens, generator=gen) < args.kept
        targets = torch.randint(0, vocab, (tokens,), generator=gen).masked_fill(~mask, -100).to(device)
        hidden = torch.randn(tokens, args.hidden, generator=gen).to(device).requires_grad_()
        weight = (torch.randn(vocab, args.hidden, generator=gen) / args.hidden**0.5).to(device).requires_grad_()
        for name, loss_fn in projection_losses(hidden, weight, targets, mask.to(device), args.chunk).items():
            env = {"loss_fn": loss_fn, "hidden": hidden, "weight": weight}
            ms = milliseconds("torch.autograd.grad(loss_fn(), (hidden, weight))", env, args.min_run_time, args.threads)
            _, saved_bytes = saved_for_backward(loss_fn, (hidden, weight, targets))
            peak = f" {cuda_peak(loss_fn, (hidden, weight)) / 1e6:8.1f}" if device.type == "cuda" else ""
            print(f"{tokens:>7}x{vocab:<7}  {name:22} {ms:9.2f} {saved_bytes / 1e6:17.2f}{peak}")


if __name__ == "__main__":
    main()
