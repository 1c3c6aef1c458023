"""T5 configuration: reads the `config.json` of `model_type: "t5"` checkpoints as is.

Fields carry the checkpoint's key names (`d_model`, `num_layers`, `num_heads`, ...); the
common names (`hidden_size`, `num_hidden_layers`, `num_attention_heads`, `head_dim`) are
aliases. `feed_forward_proj` is "ACT" (original T5: "relu") or "gated-ACT" (T5 v1.1 / FLAN:
"gated-gelu"); `is_gated_act` and `dense_act_fn` follow from it, as in the reference, which
also writes them (a file's explicit `dense_act_fn` wins, as there).

Output scaling: the original T5 multiplies the decoder output by d_model**-0.5 before the LM
head; v1.1 does not. Older files say so through `tie_word_embeddings` (false for v1.1);
transformers 5 writes `tie_word_embeddings: true` for every T5 and the choice into
`scale_decoder_outputs`, which wins when present.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...configuration import Config
from ...errors import ConfigError
from ...nn import ACTIVATION_NAMES


@dataclass(kw_only=True)
class T5Config(Config):
    model_type: ClassVar[str] = "t5"
    attribute_map: ClassVar[dict[str, str]] = {
        "hidden_size": "d_model",
        "num_attention_heads": "num_heads",
        "num_hidden_layers": "num_layers",
        "head_dim": "d_kv",
    }

    vocab_size: int = 32128
    d_model: int = 512
    d_kv: int = 64  # per-head size; need not be d_model // num_heads
    d_ff: int = 2048
    num_layers: int = 6  # encoder blocks
    num_decoder_layers: int | None = None  # None: num_layers
    num_heads: int = 8
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    dropout_rate: float = 0.1
    layer_norm_epsilon: float = 1e-6
    initializer_factor: float = 1.0
    feed_forward_proj: str = "relu"  # "ACT" or "gated-ACT"
    dense_act_fn: str | None = None  # None: from feed_forward_proj ("gated-gelu" -> "gelu_new")
    is_gated_act: bool | None = None  # None: from feed_forward_proj
    scale_decoder_outputs: bool | None = None  # None: tie_word_embeddings
    is_encoder_decoder: bool = True
    use_cache: bool = True
    tie_word_embeddings: bool = True
    pad_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 1
    decoder_start_token_id: int | None = None  # T5 checkpoints say 0 (= pad)
    classifier_dropout: float = 0.0
    is_decoder: bool = False  # kept for round trips; the model sets up its own decoder

    def __post_init__(self):
        super().__post_init__()
        for name in ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads",
                     "relative_attention_num_buckets", "relative_attention_max_distance"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, found {getattr(self, name)}")
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        elif self.num_decoder_layers <= 0:
            raise ConfigError(f"num_decoder_layers must be positive or null, found {self.num_decoder_layers}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ConfigError(f"dropout_rate must be in [0, 1), found {self.dropout_rate}")
        gated, act = _parse_feed_forward_proj(self.feed_forward_proj)
        if self.is_gated_act is None:
            self.is_gated_act = gated
        elif self.is_gated_act != gated:
            raise ConfigError(f"is_gated_act={self.is_gated_act} contradicts feed_forward_proj="
                              f"{self.feed_forward_proj!r}; drop is_gated_act (it follows from feed_forward_proj)")
        if self.dense_act_fn is None:
            # "gated-gelu" has meant the tanh approximation since the first v1.1 checkpoints.
            self.dense_act_fn = "gelu_new" if self.feed_forward_proj == "gated-gelu" else act
        if self.dense_act_fn not in ACTIVATION_NAMES:
            raise ConfigError(f"dense_act_fn={self.dense_act_fn!r} (feed_forward_proj={self.feed_forward_proj!r}) is "
                              f"not supported; choose one of {', '.join(sorted(ACTIVATION_NAMES))}")
        if self.scale_decoder_outputs is None:
            self.scale_decoder_outputs = self.tie_word_embeddings
        for name in ("pad_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ConfigError(f"{name}={value} is outside the vocabulary (size {self.vocab_size})")

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides) -> T5Config:
        # A new feed_forward_proj re-derives what follows from it, unless those are given too.
        if "feed_forward_proj" in overrides:
            data = {k: v for k, v in data.items()
                    if k not in ("is_gated_act", "dense_act_fn") or k in overrides}
        return super().from_dict(data, **overrides)

    @property
    def position_limit(self) -> None:
        """Relative positions: no longest sequence."""
        return None


def _parse_feed_forward_proj(value: str) -> tuple[bool, str]:
    parts = value.split("-")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated") or not parts[-1]:
        raise ConfigError(f"feed_forward_proj must be 'ACT' or 'gated-ACT' (e.g. 'relu', 'gated-gelu'), "
                          f"found {value!r}")
    return len(parts) == 2, parts[-1]


__all__ = ["T5Config"]
