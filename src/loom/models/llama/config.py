"""Llama configuration: reads the `config.json` of `llama`, `mistral` and `qwen2` checkpoints.

The three families share one architecture. A file keeps its `model_type` when written back;
keys a family's file may leave out take that family's defaults (`FAMILY_DEFAULTS`, as the
reference's config classes have them), e.g. Qwen2's q/k/v biases and its sliding window being
off unless `use_sliding_window` is set.
RoPE settings are read from `rope_parameters` (transformers >= 5) or `rope_theta` +
`rope_scaling` (older files); `rope` is the one standardised dict the model uses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from ...configuration import Config
from ...errors import ConfigError
from ...nn import check_activation

# Keys each RoPE scaling type needs (besides rope_type and rope_theta).
ROPE_REQUIRED_KEYS = {
    "default": (),
    "linear": ("factor",),
    "dynamic": ("factor",),
    "yarn": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor"),
}
LAYER_TYPES = ("full_attention", "sliding_attention")


@dataclass(kw_only=True)
class LlamaConfig(Config):
    model_type: ClassVar[str] = "llama"
    model_type_aliases: ClassVar[tuple[str, ...]] = ("mistral", "qwen2")
    FAMILY_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "llama": {},
        "mistral": {"intermediate_size": 14336, "num_key_value_heads": 8,
                    "max_position_embeddings": 131072, "sliding_window": 4096},
        "qwen2": {"vocab_size": 151936, "intermediate_size": 22016, "num_key_value_heads": 32,
                  "max_position_embeddings": 32768, "bos_token_id": None, "eos_token_id": None,
                  "qkv_bias": True, "use_sliding_window": False, "sliding_window": 4096,
                  "max_window_layers": 28},
    }

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int | None = None  # None: plain multi-head attention
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    use_cache: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    pretraining_tp: int | None = 1  # kept for round trips; has no effect
    tie_word_embeddings: bool = False
    rope_theta: float | None = None
    rope_scaling: dict | None = None
    rope_parameters: dict | None = None
    attention_bias: bool = False  # bias on q, k, v and o projections
    attention_dropout: float = 0.0
    mlp_bias: bool = False
    qkv_bias: bool | None = None  # None: same as attention_bias; Qwen2: q/k/v biased, o not
    sliding_window: int | None = None  # Mistral / Qwen2: keys at most this far back
    use_sliding_window: bool | None = None  # None: a window when sliding_window is set
    max_window_layers: int | None = None  # Qwen2: layers below this index use full attention
    layer_types: list[str] | None = None  # per layer "full_attention" | "sliding_attention"

    def __post_init__(self):
        super().__post_init__()
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                     "num_attention_heads", "max_position_embeddings"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, found {getattr(self, name)}")
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ConfigError(f"hidden_size={self.hidden_size} is not divisible by "
                                  f"num_attention_heads={self.num_attention_heads}; set head_dim")
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.num_key_value_heads <= 0 or self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(f"num_attention_heads={self.num_attention_heads} must be a multiple of "
                              f"num_key_value_heads={self.num_key_value_heads}")
        if self.head_dim <= 0 or self.head_dim % 2:
            raise ConfigError(f"head_dim must be a positive even number for RoPE, found {self.head_dim}")
        check_activation(self.hidden_act)
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(f"pad_token_id={self.pad_token_id} is outside the vocabulary (size {self.vocab_size})")
        if self.sliding_window is not None and self.sliding_window <= 0:
            raise ConfigError(f"sliding_window must be positive or null, found {self.sliding_window}")
        if self.layer_types is not None:
            bad = [t for t in self.layer_types if t not in LAYER_TYPES]
            if len(self.layer_types) != self.num_hidden_layers or bad:
                raise ConfigError(f"layer_types must list {self.num_hidden_layers} values from {LAYER_TYPES}, "
                                  f"found {self.layer_types}")
        self._check_rope()

    def _check_rope(self) -> None:
        rope = self.rope
        kind = rope["rope_type"]
        if kind not in ROPE_REQUIRED_KEYS:
            raise ConfigError(f"rope type {kind!r} (rope_parameters / rope_scaling) is not supported; "
                              f"loom supports {', '.join(ROPE_REQUIRED_KEYS)}")
        missing = [k for k in ROPE_REQUIRED_KEYS[kind] if rope.get(k) is None]
        if missing:
            raise ConfigError(f"rope type {kind!r} needs {missing} in rope_parameters / rope_scaling, found {rope}")
        factor = rope.get("factor")
        if factor is not None and (isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 0):
            raise ConfigError(f"rope factor must be a positive number, found {factor!r}")
        if not isinstance(rope["rope_theta"], (int, float)) or rope["rope_theta"] <= 0:
            raise ConfigError(f"rope_theta must be a positive number, found {rope['rope_theta']!r}")

    # -- derived views ----------------------------------------------------------------------

    @property
    def rope(self) -> dict[str, Any]:
        """The standardised RoPE parameters: rope_type, rope_theta and the type's own keys."""
        params = dict(self.rope_parameters or self.rope_scaling or {})
        kind = params.pop("type", None)
        params["rope_type"] = params.get("rope_type") or kind or "default"
        if params.get("rope_theta") is None:
            params["rope_theta"] = self.rope_theta if self.rope_theta is not None else 10000.0
        if params["rope_type"] in ("yarn", "llama3"):
            original = self.extra.get("original_max_position_embeddings", self.max_position_embeddings)
            params.setdefault("original_max_position_embeddings", original)
        return params

    @property
    def num_key_value_groups(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    @property
    def position_limit(self) -> int:
        """Longest sequence `generate` accepts: max_position_embeddings, times the factor for
        dynamic NTK scaling, which exists to run past the trained length."""
        rope = self.rope
        if rope["rope_type"] == "dynamic":
            return int(self.max_position_embeddings * rope["factor"])
        return self.max_position_embeddings

    @property
    def attention_windows(self) -> list[int | None]:
        """Per layer: the sliding window (keys at most that far back) or None (full)."""
        window = self.sliding_window if self.use_sliding_window is not False else None
        if self.layer_types is not None:
            types = self.layer_types
        else:
            first = self.max_window_layers or 0
            types = ["sliding_attention" if i >= first else "full_attention" for i in range(self.num_hidden_layers)]
        return [window if t == "sliding_attention" else None for t in types]

    @property
    def has_qkv_bias(self) -> bool:
        return self.attention_bias if self.qkv_bias is None else self.qkv_bias

    # -- reading and writing ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides) -> LlamaConfig:
        family = overrides.get("model_type") or data.get("model_type") or cls.model_type
        defaults = cls.FAMILY_DEFAULTS.get(family, {})
        config = super().from_dict({**defaults, **data}, **overrides)
        if family in cls.model_type_aliases:  # config.model_type names the family, as in the file
            object.__setattr__(config, "model_type", family)
        object.__setattr__(config, "_file_keys", set(data) | set(overrides))
        object.__setattr__(config, "_family_defaults", defaults)
        return config

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        file_keys = self.__dict__.get("_file_keys")
        own = {f.name for f in dataclasses.fields(LlamaConfig)} - {f.name for f in dataclasses.fields(Config)}
        if file_keys is None:  # built in code: leave out what is unset (transformers reads null as a value)
            for key in own:
                if out.get(key, 0) is None:
                    del out[key]
        else:  # add no key the file lacked unless it says something
            defaults = {**{f.name: f.default for f in dataclasses.fields(LlamaConfig)
                           if f.default is not dataclasses.MISSING},
                        **self.__dict__.get("_family_defaults", {}),
                        "head_dim": self.hidden_size // self.num_attention_heads,
                        "num_key_value_heads": self.num_attention_heads}
            for key in own - file_keys:
                if key in out and key in defaults and out[key] == defaults[key]:
                    del out[key]
        if all(out.get(k) is None for k in ("rope_parameters", "rope_scaling", "rope_theta")):
            out["rope_parameters"] = self.rope  # what transformers >= 5 writes
        return out
