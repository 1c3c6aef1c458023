"""loom: pretrained transformer models, three classes per model.

The public names load on first use (PEP 562), so `import loom` is quick and imports
neither torch nor jax.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    # errors
    **{
        name: "loom.errors"
        for name in (
            "LoomError", "ConfigError", "UnknownModelTypeError", "CheckpointError",
            "ShapeMismatchError", "UnsafeCheckpointError", "TokenizerError", "InputError",
            "HubError", "OfflineError", "NetworkError", "EntryNotFoundError",
            "RepositoryNotFoundError", "RevisionNotFoundError", "GatedRepoError",
        )
    },
    "Config": "loom.configuration",
    "PretrainedConfig": "loom.configuration",
    "PreTrainedModel": "loom.modeling.base",
    "Tokenizer": "loom.preprocessing.tokenizer",
    "PreTrainedTokenizerFast": "loom.preprocessing.tokenizer",
    "BatchEncoding": "loom.preprocessing.tokenizer",
    **{
        name: "loom.auto"
        for name in (
            "AutoConfig", "AutoTokenizer", "AutoModel", "AutoModelForMaskedLM",
            "AutoModelForSequenceClassification", "AutoModelForTokenClassification",
            "AutoModelForQuestionAnswering", "AutoModelForPreTraining",
        )
    },
    **{
        name: "loom.models.bert"
        for name in (
            "BertConfig", "BertModel", "BertForMaskedLM", "BertForSequenceClassification",
            "BertForTokenClassification", "BertForQuestionAnswering", "BertForPreTraining",
        )
    },
    "SentenceEmbedder": "loom.embeddings",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loom' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return __all__
