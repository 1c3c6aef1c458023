"""CLIP configurations: one per tower (`clip_text_model`, `clip_vision_model`) and the pair
(`clip`), reading the `config.json` files of those types as they are.

A tower's config also reads a full CLIP `config.json` (taking its `text_config` or
`vision_config`), so `CLIPTextModel.from_pretrained("openai/clip-vit-base-patch32")` works.
Old files spell a tower's keys in `text_config_dict` / `vision_config_dict`; they win over
`text_config` / `vision_config`, as in transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...configuration import Config
from ...errors import ConfigError
from ...nn import check_activation


def _check_tower(config: Config) -> None:
    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{type(config).__name__}.{name} must be positive, found {getattr(config, name)}")
    if config.hidden_size % config.num_attention_heads:
        raise ConfigError(f"{type(config).__name__}: hidden_size={config.hidden_size} is not divisible by "
                          f"num_attention_heads={config.num_attention_heads}")
    check_activation(config.hidden_act)


class _Tower:
    """from_dict that accepts a whole CLIP config and keeps the tower's part."""

    sub_key: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides):
        if data.get("model_type") == "clip":
            sub = CLIPConfig.tower_dict(data, cls.sub_key)
            return super().from_dict({**sub, "model_type": cls.model_type}, **overrides)
        return super().from_dict(data, **overrides)


@dataclass(kw_only=True)
class CLIPTextConfig(_Tower, Config):
    model_type: ClassVar[str] = "clip_text_model"
    sub_key: ClassVar[str] = "text_config"

    vocab_size: int = 49408
    hidden_size: int = 512
    intermediate_size: int = 2048
    projection_dim: int = 512
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    max_position_embeddings: int = 77
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    initializer_factor: float = 1.0
    pad_token_id: int | None = 1
    bos_token_id: int | None = 49406
    eos_token_id: int | list[int] | None = 49407

    def __post_init__(self):
        super().__post_init__()
        _check_tower(self)
        for name in ("vocab_size", "max_position_embeddings", "projection_dim"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"CLIPTextConfig.{name} must be positive, found {getattr(self, name)}")
        if not isinstance(self.eos_token_id, int):
            raise ConfigError(f"CLIPTextConfig.eos_token_id must be one int (the text is pooled at it), "
                              f"found {self.eos_token_id!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


@dataclass(kw_only=True)
class CLIPVisionConfig(_Tower, Config):
    model_type: ClassVar[str] = "clip_vision_model"
    sub_key: ClassVar[str] = "vision_config"

    hidden_size: int = 768
    intermediate_size: int = 3072
    projection_dim: int = 512
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 32
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    initializer_factor: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        _check_tower(self)
        for name in ("num_channels", "image_size", "patch_size", "projection_dim"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"CLIPVisionConfig.{name} must be positive, found {getattr(self, name)}")
        if self.image_size < self.patch_size:
            raise ConfigError(f"CLIPVisionConfig: image_size={self.image_size} is smaller than patch_size={self.patch_size}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def grid(self) -> tuple[int, int]:
        n = self.image_size // self.patch_size
        return n, n


@dataclass(kw_only=True)
class CLIPConfig(Config):
    model_type: ClassVar[str] = "clip"

    text_config: CLIPTextConfig | dict | None = None
    vision_config: CLIPVisionConfig | dict | None = None
    projection_dim: int = 512
    logit_scale_init_value: float = 2.6592
    initializer_factor: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.text_config, CLIPTextConfig):
            self.text_config = CLIPTextConfig.from_dict(dict(self.text_config or {}))
        if not isinstance(self.vision_config, CLIPVisionConfig):
            self.vision_config = CLIPVisionConfig.from_dict(dict(self.vision_config or {}))
        if self.projection_dim <= 0:
            raise ConfigError(f"CLIPConfig.projection_dim must be positive, found {self.projection_dim}")

    @classmethod
    def from_text_vision_configs(cls, text_config: CLIPTextConfig, vision_config: CLIPVisionConfig, **kwargs):
        return cls(text_config=text_config, vision_config=vision_config, **kwargs)

    @staticmethod
    def tower_dict(data: dict[str, Any], key: str) -> dict[str, Any]:
        """A tower's keys: `text_config`, updated by the legacy `text_config_dict` when present."""
        sub = data.get(key) or {}
        legacy = data.get(f"{key}_dict") or {}
        for name, value in (("", sub), ("_dict", legacy)):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}{name} in a CLIP config must be an object, found {type(value).__name__}")
        return {**sub, **legacy}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides) -> CLIPConfig:
        data = dict(data)
        for key in ("text_config", "vision_config"):
            if f"{key}_dict" in data:
                data[key] = cls.tower_dict(data, key)
                del data[f"{key}_dict"]
        return super().from_dict(data, **overrides)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["text_config"] = self.text_config.to_dict()
        out["vision_config"] = self.vision_config.to_dict()
        return out


__all__ = ["CLIPConfig", "CLIPTextConfig", "CLIPVisionConfig"]
