"""Attention masks, built once for every layer.

Masks are additive float tensors broadcastable to (B, H, T, S): 0 where a query may attend,
the dtype's most negative finite value where it may not (finite, so a fully masked row gives
a uniform softmax instead of NaN).
"""

from __future__ import annotations

import torch

from ..errors import InputError


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


# -- decoders: causal + padding + sliding window, built once per forward ------------------
#
# Key "slots" are positions in the key/value cache: slot j holds the j-th token fed to the
# model (left padding included). The T queries of a forward sit at slots past..past+T-1.


def causal_mask(attention_mask: torch.Tensor | None, past, T: int, S: int, dtype: torch.dtype,
                device=None, sliding_window: int | None = None) -> torch.Tensor | None:
    """Additive (B or 1, 1, T, S) mask: query slot q sees key slot j iff j <= q, q - j <
    `sliding_window` (when set) and `attention_mask[:, j]` is 1.

    `attention_mask` (B, S') of 1/0 covers the slots from 0; columns missing at the end count
    as 1 (unwritten slots of a static cache lie after every query, so causality hides them).
    `past` is an int or a 0-d tensor (static caches, so that compiled graphs do not specialise
    on it). Returns None when the keys are exactly the tokens so far (S == past + T), nothing
    is padded or windowed, and either there is one query or no past: callers then pass
    `is_causal=T > 1` to the attention function.
    """
    device = device if device is not None else (attention_mask.device if attention_mask is not None else None)
    if not torch.compiler.is_compiling() and isinstance(past, int):
        no_padding = attention_mask is None or bool(attention_mask[:, :S].all())
        no_window = sliding_window is None or sliding_window >= S
        if no_padding and no_window and S == past + T and (T == 1 or past == 0):
            return None
    q = torch.arange(T, device=device) + past  # (T,) query slots
    k = torch.arange(S, device=device)
    keep = k[None, :] <= q[:, None]  # (T, S)
    if sliding_window is not None:
        keep = keep & (k[None, :] > q[:, None] - sliding_window)
    keep = keep[None, None]  # (1, 1, T, S)
    if attention_mask is not None:
        am = attention_mask[:, :S].bool()
        if am.shape[1] < S:
            am = torch.cat([am, am.new_ones(am.shape[0], S - am.shape[1])], dim=1)
        keep = keep & am[:, None, None, :]
    mask = torch.zeros(keep.shape, dtype=dtype, device=device)
    return mask.masked_fill(~keep, torch.finfo(dtype).min)


def position_ids_from_mask(attention_mask: torch.Tensor, past, T: int) -> torch.Tensor:
    """(B, T) positions of the tokens at slots past..past+T-1: how many real tokens precede
    each one, so that a left-padded row counts from 0 at its first real token. Padding slots
    get position 0."""
    pos = attention_mask.long().cumsum(-1) - 1
    pos = pos.masked_fill(attention_mask == 0, 0)
    return pos[:, past:past + T]


def decoder_positions_and_masks(attention_mask, position_ids, cache, T: int, dtype, device,
                                windows=(None,)) -> tuple[torch.Tensor, dict]:
    """What a decoder's forward needs before its layers: (B or 1, T) position ids (from the
    attention mask when not given, so left padding is handled) and one additive mask per
    distinct sliding window in `windows` (None: full causal), keyed by window.

    `attention_mask` (B, past + T), as `generate` keeps it, covers the cached tokens too.
    """
    past = cache.get_seq_length() if cache is not None else 0
    S = cache.max_cache_len if cache is not None and cache.max_cache_len else past + T
    if attention_mask is not None:
        if attention_mask.dim() != 2:
            raise InputError(f"attention_mask must have shape (batch, tokens), found {tuple(attention_mask.shape)}")
        if not torch.compiler.is_compiling() and not past + T <= attention_mask.shape[1] <= S:
            raise InputError(
                f"attention_mask covers {attention_mask.shape[1]} tokens; with {int(past)} cached and "
                f"{T} new it must cover {int(past) + T} (the cached tokens too)")
    if position_ids is None:
        if attention_mask is not None:
            position_ids = position_ids_from_mask(attention_mask, past, T)
        else:
            position_ids = (torch.arange(T, device=device) + past).unsqueeze(0)
    masks = {w: causal_mask(attention_mask, past, T, S, dtype, device, w) for w in set(windows)}
    return position_ids, masks
