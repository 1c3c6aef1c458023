"""The one attention function every model calls.

`attention` takes q (B, H, T, D), k and v (B, Hkv, S, D) and an additive mask; it runs
PyTorch's fused `scaled_dot_product_attention` when no weights are asked for, and the eager
path (same mask, same scale) when `need_weights` or a `head_mask` is given, so attention
probabilities are available whatever the default backend is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    scale: float | None = None,
    dropout: float = 0.0,
    head_mask: torch.Tensor | None = None,
    need_weights: bool = False,
    is_causal: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return (output (B, H, T, D), weights (B, H, T, S) or None)."""
    n_rep = q.shape[1] // k.shape[1]
    if not need_weights and head_mask is None:
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout, scale=scale,
            is_causal=is_causal and mask is None, enable_gqa=n_rep > 1,
        )
        return out, None
    if n_rep > 1:  # grouped-query attention: each k/v head serves n_rep query heads
        k = k.repeat_interleave(n_rep, dim=1)
        v = v.repeat_interleave(n_rep, dim=1)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # (B, H, T, S)
    if is_causal and mask is None:
        T, S = scores.shape[-2:]
        causal = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    if dropout > 0.0:
        weights = F.dropout(weights, p=dropout, training=True)
    if head_mask is not None:
        weights = weights * head_mask
    return torch.matmul(weights, v), weights


def layer_head_masks(
    head_mask: torch.Tensor | None, num_layers: int, num_heads: int, dtype: torch.dtype
) -> list[torch.Tensor | None]:
    """Turn a head mask of shape (H,) or (L, H) into one (1, H, 1, 1) tensor per layer.

    A value of 0 silences a head, 1 keeps it; values in between scale its probabilities.
    """
    if head_mask is None:
        return [None] * num_layers
    hm = torch.as_tensor(head_mask)
    if hm.dim() == 1:
        hm = hm.unsqueeze(0).expand(num_layers, -1)
    if hm.dim() != 2 or hm.shape[0] != num_layers or hm.shape[1] != num_heads:
        raise InputError(
            f"head_mask must have shape ({num_heads},) or ({num_layers}, {num_heads}), "
            f"found {tuple(torch.as_tensor(head_mask).shape)}"
        )
    hm = hm.to(dtype)
    return [hm[i].view(1, -1, 1, 1) for i in range(num_layers)]
