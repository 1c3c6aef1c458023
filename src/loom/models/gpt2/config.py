"""GPT-2 configuration: reads the `config.json` of `model_type: "gpt2"` checkpoints as is.

Fields carry the checkpoint's own key names (`n_embd`, `n_layer`, ...); the common names
(`hidden_size`, `num_hidden_layers`, `num_attention_heads`, `max_position_embeddings`) are
aliases that read and set them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...configuration import Config
from ...errors import ConfigError
from ...nn import check_activation


@dataclass(kw_only=True)
class GPT2Config(Config):
    model_type: ClassVar[str] = "gpt2"
    attribute_map: ClassVar[dict[str, str]] = {
        "hidden_size": "n_embd",
        "num_hidden_layers": "n_layer",
        "num_attention_heads": "n_head",
        "max_position_embeddings": "n_positions",
    }

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None  # None: 4 * n_embd
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    scale_attn_weights: bool = True  # scores / sqrt(head_dim)
    scale_attn_by_inverse_layer_idx: bool = False  # and / (layer index + 1)
    reorder_and_upcast_attn: bool = False  # scores and softmax in float32
    add_cross_attention: bool = False
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True

    def __post_init__(self):
        super().__post_init__()
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, found {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.n_inner is not None and self.n_inner <= 0:
            raise ConfigError(f"n_inner must be positive or null, found {self.n_inner}")
        if self.add_cross_attention:
            raise ConfigError("add_cross_attention=True (GPT-2 as an encoder-decoder's decoder) is not "
                              "supported by loom's GPT-2")
        check_activation(self.activation_function)
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(f"pad_token_id={self.pad_token_id} is outside the vocabulary (size {self.vocab_size})")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def position_limit(self) -> int:
        """Longest sequence the position table holds."""
        return self.n_positions
