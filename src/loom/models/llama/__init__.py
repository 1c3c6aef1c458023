"""Llama (and the Mistral and Qwen2 checkpoints of the same architecture): configuration,
models and the task table read by `Auto*` classes and pipelines.

The config imports eagerly (no torch); model classes load with `modeling` on first use.
"""

import importlib

from .config import LlamaConfig

CONFIG_CLASS = LlamaConfig
# task -> class name in .modeling
TASKS = {
    "base": "LlamaModel",
    "causal-lm": "LlamaForCausalLM",
    "sequence-classification": "LlamaForSequenceClassification",
}

__all__ = ["LlamaConfig", *TASKS.values(), "LlamaPreTrainedModel"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(".modeling", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
