"""Key/value caches for incremental decoding.

The protocol every cache keeps (decoders call only this; encoder-decoder models will reuse it,
one cache for self-attention and one for cross-attention, so it must not churn):

- `update(layer, k, v) -> (k_all, v_all)`: store the keys and values of this forward's tokens
  for `layer`, each (B, Hkv, T, D), and return every key and value that layer's attention
  sees, each (B, Hkv, S, D).
- `get_seq_length(layer=0)`: how many tokens (slots) `layer` already holds, before this
  forward's update. An int, or a 0-d long tensor for static caches (so that a compiled graph
  does not specialise on its value).
- `reorder(beam_idx)`: keep batch rows `beam_idx` (LongTensor (B,)), in place; beam search
  calls it after choosing which beams continue.
- `crop(n)`: keep the first `n` slots (`n < 0`: drop the last `-n`).
- `max_cache_len`: None when the keys grow with the sequence (S = past + T); an int when
  they have a fixed length S = max_cache_len. Slots not yet written then lie after every
  query, so the causal mask (`loom.nn.masks.causal_mask`) hides them.

Slot j holds the j-th token given to the model, left padding included; positions (for RoPE or
position embeddings) are separate and come from the attention mask.

Encoder-decoder models take an `EncoderDecoderCache`: the protocol above applies to the
decoder's self-attention; `cross(layer)` / `set_cross(layer, k, v)` hold the keys and values
computed once from the encoder output for each layer's cross-attention.
"""

from __future__ import annotations

import torch

from ..errors import InputError


class Cache:
    """Base class: see the module docstring for the protocol."""

    max_cache_len: int | None = None

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def get_seq_length(self, layer: int = 0):
        raise NotImplementedError

    def reorder(self, beam_idx: torch.Tensor) -> None:
        raise NotImplementedError

    def crop(self, n: int) -> None:
        raise NotImplementedError

    def _crop_length(self, n: int, length: int) -> int:
        keep = length + n if n < 0 else n
        if not 0 <= keep <= length:
            raise InputError(f"crop({n}) on a cache holding {length} tokens")
        return keep


class DynamicCache(Cache):
    """Grows by concatenation; memory follows the sequence length. The default for `generate`."""

    def __init__(self):
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.keys)

    def update(self, layer, k, v):
        if layer > len(self.keys):
            raise InputError(f"cache update for layer {layer} before layer {len(self.keys)}")
        if layer == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=2)  # (B, Hkv, S, D)
            self.values[layer] = torch.cat([self.values[layer], v], dim=2)
        return self.keys[layer], self.values[layer]

    def get_seq_length(self, layer: int = 0) -> int:
        return self.keys[layer].shape[2] if layer < len(self.keys) else 0

    def reorder(self, beam_idx):
        for i in range(len(self.keys)):
            idx = beam_idx.to(self.keys[i].device)
            self.keys[i] = self.keys[i].index_select(0, idx)
            self.values[i] = self.values[i].index_select(0, idx)

    def crop(self, n):
        if not self.keys:
            return
        keep = self._crop_length(n, self.get_seq_length())
        self.keys = [k[:, :, :keep] for k in self.keys]
        self.values = [v[:, :, :keep] for v in self.values]


class StaticCache(Cache):
    """Preallocated (B, Hkv, max_cache_len, D) buffers written in place, so every decoding
    step has the same shapes: what `torch.compile` needs to compile the step once.

    Buffers are allocated on the first update of each layer (shapes and dtype from that
    update); the write position of each layer is a 0-d long tensor.
    """

    def __init__(self, max_cache_len: int):
        if not isinstance(max_cache_len, int) or max_cache_len <= 0:
            raise InputError(f"max_cache_len must be a positive int, found {max_cache_len!r}")
        self.max_cache_len = max_cache_len
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self._lengths: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.keys)

    def _allocate(self, layer: int, k: torch.Tensor) -> None:
        if layer != len(self.keys):
            raise InputError(f"cache update for layer {layer} before layer {len(self.keys)}")
        B, H, _, D = k.shape
        shape = (B, H, self.max_cache_len, D)
        self.keys.append(torch.zeros(shape, dtype=k.dtype, device=k.device))
        self.values.append(torch.zeros(shape, dtype=k.dtype, device=k.device))
        self._lengths.append(torch.zeros((), dtype=torch.long, device=k.device))

    def update(self, layer, k, v):
        if layer >= len(self.keys):
            self._allocate(layer, k)
        T = k.shape[2]
        if not torch.compiler.is_compiling():
            if k.shape[0] != self.keys[layer].shape[0]:
                raise InputError(f"this static cache holds batch {self.keys[layer].shape[0]}, "
                                 f"the input has batch {k.shape[0]}")
            if int(self._lengths[layer]) + T > self.max_cache_len:
                raise InputError(f"static cache of max_cache_len={self.max_cache_len} is full: "
                                 f"it holds {int(self._lengths[layer])} tokens, {T} more were given")
        idx = self._lengths[layer] + torch.arange(T, device=k.device)  # (T,) slots to write
        self.keys[layer].index_copy_(2, idx, k.to(self.keys[layer].dtype))
        self.values[layer].index_copy_(2, idx, v.to(self.values[layer].dtype))
        self._lengths[layer].add_(T)
        return self.keys[layer], self.values[layer]

    def get_seq_length(self, layer: int = 0):
        if layer >= len(self._lengths):
            return 0
        return self._lengths[layer].clone()  # a copy: the update moves the original on

    def reorder(self, beam_idx):
        for i in range(len(self.keys)):
            idx = beam_idx.to(self.keys[i].device)
            self.keys[i].copy_(self.keys[i].index_select(0, idx))
            self.values[i].copy_(self.values[i].index_select(0, idx))

    def crop(self, n):
        for length in self._lengths:
            length.fill_(self._crop_length(n, int(length)))

    def reset(self) -> None:
        """Forget every token (buffers stay allocated), to reuse the cache for a new prompt."""
        for k, v, length in zip(self.keys, self.values, self._lengths):
            k.zero_()
            v.zero_()
            length.zero_()


class EncoderDecoderCache(Cache):
    """A self-attention cache (any `Cache`) plus the cross-attention keys and values of each
    decoder layer, computed from the encoder output on the first forward and reused after.

    `update`, `get_seq_length`, `crop` and `max_cache_len` are those of the self-attention
    cache; `reorder` reorders both (beam search).
    """

    def __init__(self, self_attention_cache: Cache | None = None):
        self.self_attention_cache = self_attention_cache if self_attention_cache is not None else DynamicCache()
        self.cross_keys: list[torch.Tensor | None] = []
        self.cross_values: list[torch.Tensor | None] = []

    @property
    def max_cache_len(self):
        return self.self_attention_cache.max_cache_len

    def __len__(self) -> int:
        return len(self.self_attention_cache)

    def update(self, layer, k, v):
        return self.self_attention_cache.update(layer, k, v)

    def get_seq_length(self, layer: int = 0):
        return self.self_attention_cache.get_seq_length(layer)

    def cross(self, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The cached cross-attention (k, v) of `layer`, each (B, H, S_enc, D), or None."""
        if layer < len(self.cross_keys) and self.cross_keys[layer] is not None:
            return self.cross_keys[layer], self.cross_values[layer]
        return None

    def set_cross(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        while len(self.cross_keys) <= layer:
            self.cross_keys.append(None)
            self.cross_values.append(None)
        self.cross_keys[layer], self.cross_values[layer] = k, v

    def reorder(self, beam_idx):
        self.self_attention_cache.reorder(beam_idx)
        for i, (k, v) in enumerate(zip(self.cross_keys, self.cross_values)):
            if k is not None:
                idx = beam_idx.to(k.device)
                self.cross_keys[i], self.cross_values[i] = k.index_select(0, idx), v.index_select(0, idx)

    def crop(self, n):
        self.self_attention_cache.crop(n)


__all__ = ["Cache", "DynamicCache", "StaticCache", "EncoderDecoderCache"]
