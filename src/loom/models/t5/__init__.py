"""T5 (and T5 v1.1, FLAN-T5): configuration, models and the task table read by `Auto*`
classes and pipelines.

The config imports eagerly (no torch); model classes load with `modeling` on first use.
"""

import importlib

from .config import T5Config

CONFIG_CLASS = T5Config
# task -> class name in .modeling
TASKS = {
    "base": "T5Model",
    "seq2seq-lm": "T5ForConditionalGeneration",
    "encoder": "T5EncoderModel",
}

__all__ = ["T5Config", *TASKS.values(), "T5PreTrainedModel"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(".modeling", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
