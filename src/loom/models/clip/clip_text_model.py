"""`model_type: "clip_text_model"`: CLIP's text tower saved on its own."""

import importlib

from .config import CLIPTextConfig

CONFIG_CLASS = CLIPTextConfig
TASKS = {"base": "CLIPTextModel"}


def __getattr__(name: str):
    if name in ("CLIPTextModel", "CLIPTextModelWithProjection"):
        return getattr(importlib.import_module(".modeling", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
