"""GPT-2: configuration, models and the task table read by `Auto*` classes and pipelines.

The config imports eagerly (no torch); model classes load with `modeling` on first use.
"""

import importlib

from .config import GPT2Config

CONFIG_CLASS = GPT2Config
# task -> class name in .modeling
TASKS = {
    "base": "GPT2Model",
    "causal-lm": "GPT2LMHeadModel",
    "sequence-classification": "GPT2ForSequenceClassification",
}

__all__ = ["GPT2Config", *TASKS.values(), "GPT2PreTrainedModel"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(".modeling", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
