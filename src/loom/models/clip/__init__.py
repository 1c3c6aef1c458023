"""CLIP: configurations, image processor, processor, models, and the task table read by
`Auto*` classes. `clip_text_model` and `clip_vision_model` configs (a tower saved alone) are
served by the sibling modules of those names.

Configs and preprocessors import eagerly (no torch); model classes load with `modeling` on
first use.
"""

import importlib

from .config import CLIPConfig, CLIPTextConfig, CLIPVisionConfig

CONFIG_CLASS = CLIPConfig
# task -> class name in .modeling
TASKS = {
    "base": "CLIPModel",
    "zero-shot-image-classification": "CLIPModel",
}
# role -> class name in .preprocessing (NumPy only), read by AutoImageProcessor / AutoProcessor
PREPROCESSORS = {"image_processor": "CLIPImageProcessor", "processor": "CLIPProcessor"}
MODELS = ["CLIPModel", "CLIPTextModel", "CLIPVisionModel", "CLIPTextModelWithProjection",
          "CLIPVisionModelWithProjection", "CLIPPreTrainedModel"]

__all__ = ["CLIPConfig", "CLIPTextConfig", "CLIPVisionConfig", *MODELS, *PREPROCESSORS.values()]


def __getattr__(name: str):
    if name in PREPROCESSORS.values():
        return getattr(importlib.import_module(".preprocessing", __name__), name)
    if name in MODELS:
        return getattr(importlib.import_module(".modeling", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
