"""BERT: configuration, models and the task table read by `Auto*` classes and pipelines.

The config imports eagerly (no torch); model classes load with `modeling` on first use.
"""

import importlib

from .config import BertConfig

CONFIG_CLASS = BertConfig
# task -> class name in .modeling
TASKS = {
    "base": "BertModel",
    "pretraining": "BertForPreTraining",
    "masked-lm": "BertForMaskedLM",
    "sequence-classification": "BertForSequenceClassification",
    "token-classification": "BertForTokenClassification",
    "question-answering": "BertForQuestionAnswering",
}

__all__ = ["BertConfig", *TASKS.values(), "BertPreTrainedModel"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(".modeling", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
