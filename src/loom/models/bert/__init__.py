"""BERT: configuration, models and the task table read by `Auto*` classes and pipelines."""

from .config import BertConfig
from .modeling import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    BertPreTrainedModel,
)

CONFIG_CLASS = BertConfig
TASKS = {
    "base": BertModel,
    "pretraining": BertForPreTraining,
    "masked-lm": BertForMaskedLM,
    "sequence-classification": BertForSequenceClassification,
    "token-classification": BertForTokenClassification,
    "question-answering": BertForQuestionAnswering,
}

__all__ = [
    "BertConfig", "BertModel", "BertForPreTraining", "BertForMaskedLM",
    "BertForSequenceClassification", "BertForTokenClassification", "BertForQuestionAnswering",
    "BertPreTrainedModel",
]
