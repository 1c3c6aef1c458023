"""Whisper configuration: reads the `config.json` of `model_type: "whisper"` checkpoints as is.

Fields carry the checkpoint's key names. As in the reference, the common names
(`hidden_size`, `num_hidden_layers`, `num_attention_heads`) alias the encoder's values.
Keys older files carry that are generation settings (`forced_decoder_ids`, `max_length`) stay
in `extra` and are written back unchanged; `generate` reads `forced_decoder_ids` from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...configuration import Config
from ...errors import ConfigError
from ...nn import check_activation


@dataclass(kw_only=True)
class WhisperConfig(Config):
    model_type: ClassVar[str] = "whisper"
    attribute_map: ClassVar[dict[str, str]] = {
        "num_key_value_heads": "encoder_attention_heads",
        "num_attention_heads": "encoder_attention_heads",
        "hidden_size": "d_model",
        "num_hidden_layers": "encoder_layers",
    }

    vocab_size: int = 51865
    num_mel_bins: int = 80
    encoder_layers: int = 4
    encoder_attention_heads: int = 6
    decoder_layers: int = 4
    decoder_attention_heads: int = 6
    decoder_ffn_dim: int = 1536
    encoder_ffn_dim: int = 1536
    encoder_layerdrop: float = 0.0
    decoder_layerdrop: float = 0.0
    decoder_start_token_id: int = 50257
    use_cache: bool = True
    is_encoder_decoder: bool = True
    activation_function: str = "gelu"
    d_model: int = 384
    dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    init_std: float = 0.02
    scale_embedding: bool = False  # kept for round trips: the reference computes the scale but never applies it
    max_source_positions: int = 1500  # encoder frames after the stride-2 conv: input is twice as long
    max_target_positions: int = 448  # longest decoder sequence
    pad_token_id: int | None = 50256
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256
    suppress_tokens: list[int] | None = None  # generation: never generated
    begin_suppress_tokens: list[int] | None = (220, 50256)  # generation: not the first new token
    # Audio classification and SpecAugment settings of the reference, kept for round trips.
    use_weighted_layer_sum: bool = False
    classifier_proj_size: int = 256
    apply_spec_augment: bool = False
    mask_time_prob: float = 0.05
    mask_time_length: int = 10
    mask_time_min_masks: int = 2
    mask_feature_prob: float = 0.0
    mask_feature_length: int = 10
    mask_feature_min_masks: int = 0
    median_filter_width: int = 7
    tie_word_embeddings: bool = True

    def __post_init__(self):
        if isinstance(self.begin_suppress_tokens, tuple):
            self.begin_suppress_tokens = list(self.begin_suppress_tokens)
        super().__post_init__()
        for name in ("vocab_size", "num_mel_bins", "encoder_layers", "decoder_layers", "encoder_attention_heads",
                     "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim", "d_model",
                     "max_source_positions", "max_target_positions"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, found {getattr(self, name)}")
        for name in ("encoder_attention_heads", "decoder_attention_heads"):
            if self.d_model % getattr(self, name):
                raise ConfigError(f"d_model={self.d_model} is not divisible by {name}={getattr(self, name)}")
        if self.d_model % 2:
            raise ConfigError(f"d_model must be even for the sinusoidal encoder positions, found {self.d_model}")
        check_activation(self.activation_function)
        for name in ("pad_token_id", "bos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ConfigError(f"{name}={value} is outside the vocabulary (vocab_size={self.vocab_size}); "
                                  f"tiny configs must set it inside the vocabulary")
        if not self.is_encoder_decoder:
            raise ConfigError("is_encoder_decoder=false (Whisper's decoder alone) is not supported by loom's Whisper")

    @property
    def position_limit(self) -> int:
        """Longest decoder sequence (prompt included): max_target_positions."""
        return self.max_target_positions

    @property
    def num_frames(self) -> int:
        """Log-mel frames the encoder takes: two per encoder position (conv2 has stride 2)."""
        return 2 * self.max_source_positions


__all__ = ["WhisperConfig"]
