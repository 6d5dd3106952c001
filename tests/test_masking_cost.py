"""benchmarks/masking_cost.py runs on the CPU and prints both tables (its --quick mode takes about a second)."""

import importlib.util
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "masking_cost.py"


@pytest.fixture(scope="module")
def masking_cost():
    spec = importlib.util.spec_from_file_location("masking_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_both_tables_on_the_cpu(masking_cost, capsys):
    masking_cost.main(["--quick", "--device", "cpu"])
    out = capsys.readouterr().out
    for way in ("ignore_index", "boolean selection", "none x mask", "project kept rows", "chunked (128 rows)"):
        assert out.count(way) == 2, way  # one row per size
    assert "peak MB" not in out  # CUDA only


def test_bad_sizes_are_refused_with_a_clear_message(masking_cost, capsys):
    with pytest.raises(SystemExit):
        masking_cost.main(["--sizes", "2048by1024"])
    assert "expected sizes like 2048x1024" in capsys.readouterr().err


def test_chunked_cross_entropy_matches_the_full_one(masking_cost):
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(10, 4, generator=gen, requires_grad=True)
    weight = torch.randn(7, 4, generator=gen, requires_grad=True)
    targets = torch.tensor([1, -100, 3, 3, -100, 0, 6, 2, -100, 5])
    full = F.cross_entropy(hidden @ weight.T, targets)
    chunked = masking_cost.ChunkedCrossEntropy.apply(hidden, weight, targets, 3)
    assert torch.allclose(full, chunked, atol=1e-6)
    want, got = torch.autograd.grad(full, (hidden, weight)), torch.autograd.grad(chunked, (hidden, weight))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(want, got, strict=True))


def test_chunked_cross_entropy_only_scores_under_no_grad(masking_cost):
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(10, 4, generator=gen, requires_grad=True)
    weight = torch.randn(7, 4, generator=gen, requires_grad=True)
    targets = torch.tensor([1, -100, 3, 3, -100, 0, 6, 2, -100, 5])
    with torch.no_grad(), FlopCounterMode(display=False) as scoring:
        loss = masking_cost.chunked_cross_entropy(hidden, weight, targets, 3)
    with FlopCounterMode(display=False) as training:
        masking_cost.chunked_cross_entropy(hidden, weight, targets, 3)
    assert torch.allclose(loss, F.cross_entropy(hidden @ weight.T, targets), atol=1e-6) and loss.grad_fn is None
    assert scoring.get_total_flops() == 2 * 10 * 4 * 7  # the forward projection only
    assert training.get_total_flops() == 3 * scoring.get_total_flops()  # and both gradients, in the forward pass


def test_chunked_cross_entropy_refuses_a_second_derivative(masking_cost):
    import torch

    hidden = torch.randn(6, 4, requires_grad=True)
    weight = torch.randn(5, 4, requires_grad=True)
    targets = torch.tensor([1, -100, 3, 0, 4, 2])
    # Through a function of the loss (here its square) the backward pass would be differentiated; without
    # @once_differentiable autograd would treat the stored gradients as constants and give a wrong number.
    loss = masking_cost.chunked_cross_entropy(hidden, weight, targets, 4)
    (grad_hidden,) = torch.autograd.grad(loss.pow(2), hidden, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad_hidden.sum().backward()
