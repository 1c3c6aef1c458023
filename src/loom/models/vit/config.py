"""ViT configuration: reads the `config.json` of `model_type: "vit"` checkpoints as is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...configuration import Config
from ...errors import ConfigError
from ...nn import check_activation


def pair(value, name: str) -> tuple[int, int]:
    """An int or [height, width] size as (height, width), checked positive."""
    hw = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(hw) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in hw):
        raise ConfigError(f"{name} must be a positive int or [height, width], found {value!r}")
    return hw


@dataclass(kw_only=True)
class ViTConfig(Config):
    model_type: ClassVar[str] = "vit"

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    image_size: int | list[int] = 224
    patch_size: int | list[int] = 16
    num_channels: int = 3
    qkv_bias: bool = True
    encoder_stride: int = 16  # masked image modeling decoder; kept for the file
    pooler_output_size: int | None = None  # None: hidden_size
    pooler_act: str = "tanh"

    def __post_init__(self):
        super().__post_init__()
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "num_channels"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, found {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"hidden_size={self.hidden_size} is not divisible by "
                              f"num_attention_heads={self.num_attention_heads}")
        image, patch = pair(self.image_size, "image_size"), pair(self.patch_size, "patch_size")
        if image[0] < patch[0] or image[1] < patch[1]:
            raise ConfigError(f"image_size={self.image_size} is smaller than patch_size={self.patch_size}")
        check_activation(self.hidden_act)
        check_activation(self.pooler_act)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per column and per row at the trained resolution."""
        (h, w), (ph, pw) = pair(self.image_size, "image_size"), pair(self.patch_size, "patch_size")
        return h // ph, w // pw
