"""Weight initialisation of freshly created modules, as the reference checkpoints were trained:
normal(0, initializer_range) for linear and embedding weights, zero biases, unit norms."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def init_module(module: nn.Module, std: float = 0.02) -> None:
    if isinstance(module, nn.Linear):
        module.weight.normal_(0.0, std)
        if module.bias is not None:
            module.bias.zero_()
    elif isinstance(module, nn.Embedding):
        module.weight.normal_(0.0, std)
        if module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        if module.weight is not None:
            module.weight.fill_(1.0)
        if module.bias is not None:
            module.bias.zero_()
    elif hasattr(module, "weight") and type(module).__name__.endswith("RMSNorm"):
        module.weight.fill_(1.0)
