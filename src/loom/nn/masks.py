"""Attention masks, built once for every layer.

Masks are additive float tensors broadcastable to (B, H, T, S): 0 where a query may attend,
the dtype's most negative finite value where it may not (finite, so a fully masked row gives
a uniform softmax instead of NaN).
"""

from __future__ import annotations

import torch


def padding_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, S) of 1/0 -> additive (B, 1, 1, S); None when there is nothing to mask."""
    if attention_mask is None:
        return None
    if attention_mask.dim() == 3:  # (B, T, S): a mask per query, as some callers pass
        keep = attention_mask[:, None, :, :]
    elif attention_mask.dim() == 2:
        keep = attention_mask[:, None, None, :]
    else:
        keep = attention_mask
    return (1.0 - keep.to(dtype)) * torch.finfo(dtype).min
