"""Removing attention heads from linear layers, shared by every model that prunes."""

from __future__ import annotations

import torch
from torch import nn


def heads_index(heads, num_heads: int, head_dim: int, pruned: set[int]) -> tuple[set[int], torch.Tensor]:
    """Heads still to remove (original numbering) and the kept feature index of the layer.

    `pruned` are the original numbers of heads already gone; the layer holds the others in
    order, so original head h sits at position h - #(pruned heads below h).
    """
    heads = {int(h) for h in heads} - pruned
    present = [h for h in range(num_heads + len(pruned)) if h not in pruned]
    keep = [i for i, h in enumerate(present) if h not in heads]
    index = torch.cat([torch.arange(i * head_dim, (i + 1) * head_dim) for i in keep]) if keep \
        else torch.zeros(0, dtype=torch.long)
    return heads, index


def prune_linear(layer: nn.Linear, index: torch.Tensor, dim: int = 0) -> nn.Linear:
    """A new Linear keeping only `index` along the output (dim=0) or input (dim=1) features."""
    index = index.to(layer.weight.device)
    w = layer.weight.index_select(dim, index).detach().clone()
    b = None
    if layer.bias is not None:
        b = layer.bias.detach().clone() if dim == 1 else layer.bias.index_select(0, index).detach().clone()
    out_f, in_f = w.shape
    new = type(layer)(in_f, out_f, bias=b is not None, device=w.device, dtype=w.dtype)  # keeps loom's Linear
    new.weight = nn.Parameter(w, requires_grad=layer.weight.requires_grad)
    if b is not None:
        new.bias = nn.Parameter(b, requires_grad=layer.bias.requires_grad)
    return new
