"""loom.nn.linear.Linear: the few-row product (weight @ x.T for <= FEW_ROWS rows) gives
nn.Linear's values, shapes and gradients whatever the rows, layout, bias and dtype; pruning
keeps the class."""

from __future__ import annotations

import pytest
import torch

from loom.nn.linear import FEW_ROWS, Linear
from loom.nn.pruning import prune_linear
from tests.helpers import assert_close


@pytest.mark.parametrize("bias", [False, True])
def test_linear_equals_torch_linear(bias):
    torch.manual_seed(0)
    fast = Linear(48, 80, bias=bias)
    plain = torch.nn.Linear(48, 80, bias=bias)
    plain.load_state_dict(fast.state_dict())
    assert list(fast.state_dict()) == list(plain.state_dict())
    for shape in [(1, 48), (1, 1, 48), (2, 1, 48), (3, 4, 48), (FEW_ROWS, 48), (FEW_ROWS + 1, 48), (5, 2, 3, 48),
                  (0, 48)]:
        x = torch.randn(*shape, requires_grad=True)
        a, b = fast(x), plain(x)
        assert a.shape == b.shape, shape
        assert_close(a, b, 1e-5, f"rows of {shape}")
        if x.numel():
            (ga, gw) = torch.autograd.grad(a.square().sum(), (x, fast.weight))
            (gb, gw2) = torch.autograd.grad(b.square().sum(), (x, plain.weight))
            assert_close(ga, gb, 1e-4, f"input gradient for {shape}")
            assert_close(gw, gw2, 1e-4, f"weight gradient for {shape}")
    x = torch.randn(48, 3).t()  # a non-contiguous input
    assert_close(fast(x), plain(x), 1e-5, "transposed input")
    fast.double()  # other dtypes go through nn.Linear's own product
    assert_close(fast(x.double()), plain.double()(x.double()), 0.0, "float64")


def test_pruning_keeps_the_class():
    layer = Linear(8, 6)
    pruned = prune_linear(layer, torch.tensor([0, 2, 5]))
    assert type(pruned) is Linear and pruned.weight.shape == (3, 8)
    assert_close(pruned(torch.ones(1, 8)), layer(torch.ones(1, 8))[:, [0, 2, 5]], 1e-6, "pruned output")
