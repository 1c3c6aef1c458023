"""Rotary position embeddings (RoPE, arXiv:2104.09864) and their context-extension variants.

`params` is the standardised dict a config builds from `rope_parameters` (transformers >= 5)
or `rope_theta` + `rope_scaling` (older files): `rope_type` ("default", "linear", "dynamic",
"yarn", "llama3"), `rope_theta`, and the keys of that type (`factor`,
`original_max_position_embeddings`, `low_freq_factor`, `high_freq_factor`, `beta_fast`,
`beta_slow`, `attention_factor`, `mscale`, `mscale_all_dim`, `truncate`).

Frequencies are float32 and computed as the reference computes them, so angles agree bit for
bit. Dynamic NTK is stateless here: each forward scales for max(position_ids) + 1, which is
what the reference's cached frequencies amount to while a sequence only grows.
Shapes: B batch, T tokens, H heads, D head dim.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "llama3")


def _base_frequencies(base, dim: int, device=None) -> torch.Tensor:
    exponents = torch.arange(0, dim, 2, dtype=torch.int64, device=device).float() / dim
    return 1.0 / (base ** exponents)  # (D/2,)


def _llama3(inv_freq: torch.Tensor, p: dict) -> torch.Tensor:
    # Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth ramp between.
    factor, low, high = p["factor"], p["low_freq_factor"], p["high_freq_factor"]
    old_len = p["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old_len / high) & ~(wavelen > old_len / low)
    return torch.where(medium, smoothed, scaled)


def _yarn_attention_factor(p: dict, factor: float) -> float:
    def mscale(scale, m=1.0):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    if p.get("attention_factor") is not None:
        return float(p["attention_factor"])
    if p.get("mscale") and p.get("mscale_all_dim"):
        return float(mscale(factor, p["mscale"]) / mscale(factor, p["mscale_all_dim"]))
    return mscale(factor)


def _yarn(p: dict, dim: int, max_position_embeddings: int, device=None) -> tuple[torch.Tensor, float]:
    # YaRN (arXiv:2309.00071): interpolate low frequencies, extrapolate high ones, with a
    # linear ramp over the dimensions in between.
    base, original = p["rope_theta"], p["original_max_position_embeddings"]
    factor = p.get("factor") or max_position_embeddings / original
    beta_fast, beta_slow = p.get("beta_fast") or 32, p.get("beta_slow") or 1

    def correction_dim(rotations: float) -> float:
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if p.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # avoid dividing by zero
    pos_freqs = base ** (torch.arange(0, dim, 2, device=device).float() / dim)
    ramp = ((torch.arange(dim // 2, dtype=torch.float32, device=device) - low) / (high - low)).clamp(0, 1)
    extrapolation = 1 - ramp
    inv_freq = (1.0 / (factor * pos_freqs)) * (1 - extrapolation) + (1.0 / pos_freqs) * extrapolation
    return inv_freq, _yarn_attention_factor(p, factor)


def rope_frequencies(params: dict, head_dim: int, max_position_embeddings: int,
                     device=None) -> tuple[torch.Tensor, float]:
    """Inverse frequencies (D/2,) float32 and the factor cos/sin are multiplied by."""
    kind, base = params["rope_type"], params["rope_theta"]
    if kind == "yarn":
        return _yarn(params, head_dim, max_position_embeddings, device)
    inv_freq = _base_frequencies(base, head_dim, device)
    if kind == "linear":
        inv_freq = inv_freq / params["factor"]
    elif kind == "llama3":
        inv_freq = _llama3(inv_freq, params)
    elif kind not in ("default", "dynamic"):
        raise ValueError(f"rope_type {kind!r} is not one of {ROPE_TYPES}")
    return inv_freq, 1.0


def dynamic_ntk_frequencies(params: dict, head_dim: int, max_position_embeddings: int,
                            seq_len: torch.Tensor) -> torch.Tensor:
    """Dynamic NTK scaling for a sequence of `seq_len` (0-d tensor) positions: the base grows
    with the length beyond `max_position_embeddings`; below it the frequencies are the default.
    Branch-free (tensor ops only), so a compiled graph does not specialise on the length."""
    factor, dim = params["factor"], head_dim
    seq = torch.clamp(seq_len, min=max_position_embeddings)
    base = params["rope_theta"] * ((factor * seq / max_position_embeddings) - (factor - 1)) ** (dim / (dim - 2))
    scaled = _base_frequencies(base, dim, seq_len.device)
    default = _base_frequencies(params["rope_theta"], dim, seq_len.device)
    return torch.where(seq_len > max_position_embeddings, scaled, default)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for given positions: forward(position_ids (B, T), dtype) -> two (B, T, D)."""

    def __init__(self, params: dict, head_dim: int, max_position_embeddings: int):
        super().__init__()
        self.params = dict(params)
        self.head_dim = head_dim
        self.max_position_embeddings = max_position_embeddings
        inv_freq, self.attention_scaling = rope_frequencies(params, head_dim, max_position_embeddings)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def reset_frequencies(self) -> None:
        """Recompute the (non-persistent) frequencies, e.g. after a load on the meta device."""
        self.inv_freq, self.attention_scaling = rope_frequencies(
            self.params, self.head_dim, self.max_position_embeddings, device=self.inv_freq.device)

    def forward(self, position_ids: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = self.inv_freq.to(device=position_ids.device, dtype=torch.float32)
        if self.params["rope_type"] == "dynamic":
            seq_len = position_ids.max() + 1
            inv_freq = dynamic_ntk_frequencies(self.params, self.head_dim, self.max_position_embeddings, seq_len)
        freqs = position_ids[..., None].float() * inv_freq  # (B, T, D/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (B, T, D)
        cos, sin = emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling
        return cos.to(dtype), sin.to(dtype)

    def _apply(self, fn, recurse=True):
        # Frequencies stay float32 when the model moves to half precision, as in the reference.
        inv_freq = self.inv_freq
        out = super()._apply(fn, recurse)
        if self.inv_freq.dtype != torch.float32 and not self.inv_freq.is_meta:
            self.inv_freq = inv_freq.to(self.inv_freq.device)
        return out


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Rotate q (B, H, T, D) and k (B, Hkv, T, D) by cos/sin (B, T, D)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, D)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


__all__ = ["ROPE_TYPES", "RotaryEmbedding", "apply_rotary", "rope_frequencies", "dynamic_ntk_frequencies"]
