"""`model_type: "clip_vision_model"`: CLIP's vision tower saved on its own."""

import importlib

from .config import CLIPVisionConfig

CONFIG_CLASS = CLIPVisionConfig
TASKS = {"base": "CLIPVisionModel"}
PREPROCESSORS = {"image_processor": "CLIPImageProcessor"}


def __getattr__(name: str):
    if name in ("CLIPVisionModel", "CLIPVisionModelWithProjection"):
        return getattr(importlib.import_module(".modeling", __package__), name)
    if name == "CLIPImageProcessor":
        return getattr(importlib.import_module(".preprocessing", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
