"""ViT: configuration, image processor, models and the task table read by `Auto*` classes.

The config and the image processor import eagerly (no torch); model classes load with
`modeling` on first use.
"""

import importlib

from .config import ViTConfig

CONFIG_CLASS = ViTConfig
# task -> class name in .modeling
TASKS = {
    "base": "ViTModel",
    "image-classification": "ViTForImageClassification",
}
# role -> class name in .preprocessing (NumPy only), read by AutoImageProcessor / AutoProcessor
PREPROCESSORS = {"image_processor": "ViTImageProcessor"}

__all__ = ["ViTConfig", *TASKS.values(), "ViTPreTrainedModel", *PREPROCESSORS.values()]


def __getattr__(name: str):
    if name in PREPROCESSORS.values():
        return getattr(importlib.import_module(".preprocessing", __name__), name)
    if name in __all__:
        return getattr(importlib.import_module(".modeling", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
