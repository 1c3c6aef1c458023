"""Checks of a text model's inputs, shared by every architecture that takes token ids."""

from __future__ import annotations

import torch

from ..errors import InputError


def check_token_inputs(input_ids, inputs_embeds, vocab_size: int, *, max_positions: int | None = None,
                       limit_name: str = "max_position_embeddings", past: int = 0,
                       embeds_allowed: bool = True) -> None:
    """Exactly one of ids / embeddings, shape (batch, tokens), at most `max_positions` tokens
    (counting `past` cached ones), ids inside the vocabulary. Skipped where values are not
    at hand (meta tensors, torch.compile tracing)."""
    if not embeds_allowed and input_ids is None:
        raise InputError("input_ids is required: (batch, tokens), e.g. from the tokenizer")
    if (input_ids is None) == (inputs_embeds is None):
        raise InputError("pass exactly one of input_ids and inputs_embeds")
    shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1]
    if len(shape) != 2:
        raise InputError(f"input_ids must have shape (batch, tokens), found {tuple(shape)}")
    if torch.compiler.is_compiling() or (input_ids is not None and input_ids.is_meta):
        return
    total = past + shape[1]
    if max_positions is not None and total > max_positions:
        cached = f" ({past} cached)" if past else ""
        raise InputError(
            f"input has {total} tokens{cached}; this model takes at most {limit_name}={max_positions}. "
            f"Truncate it (tokenizer truncation=True, max_length=...)"
        )
    if input_ids is not None and input_ids.numel():
        lo, hi = int(input_ids.min()), int(input_ids.max())
        if lo < 0 or hi >= vocab_size:
            raise InputError(f"input_ids must be in [0, {vocab_size}), found values from {lo} to {hi}")
