"""`Auto*` classes: read `model_type` from config.json, import `loom.models.<type>`, pick
the class for the task from that folder's task table.

An unknown `model_type` raises `UnknownModelTypeError` listing the supported ones, before any
weight is downloaded. Each model folder's `__init__` exports `CONFIG_CLASS` and `TASKS`
(task name -> model class name, resolved on first use).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from .configuration import CONFIG_NAME, Config
from .errors import ConfigError, UnknownModelTypeError
from .io import read_json
from .models import MODEL_TYPES

_HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token", "subfolder")


def model_module(model_type: str | None, source: Any = None):
    """Import the folder of `model_type` (its config, not yet its torch code), or raise
    naming the supported types."""
    if model_type not in MODEL_TYPES:
        where = f" in {source}" if source else ""
        found = "no model_type key" if model_type is None else f"model_type {model_type!r}"
        raise UnknownModelTypeError(
            f"{found}{where}: loom supports {', '.join(sorted(MODEL_TYPES))}"
        )
    return importlib.import_module(f"loom.models.{MODEL_TYPES[model_type]}")


def config_class_for(data: dict[str, Any], source: Any = None) -> type[Config]:
    return model_module(data.get("model_type"), source).CONFIG_CLASS


def _hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}


class AutoConfig:
    """`AutoConfig.from_pretrained(path)` returns the config class of its `model_type`."""

    def __init__(self):
        raise TypeError("use AutoConfig.from_pretrained(...) or AutoConfig.for_model(...)")

    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs) -> Config:
        from .hub import resolve

        hub = _hub_kwargs(kwargs)
        overrides = {k: v for k, v in kwargs.items() if k not in hub}
        path = resolve(path_or_repo_id, CONFIG_NAME, **hub)
        data = read_json(path, what="config file")
        return config_class_for(data, path).from_dict(data, **overrides)

    @staticmethod
    def for_model(model_type: str, **kwargs) -> Config:
        return model_module(model_type).CONFIG_CLASS(**kwargs)


class _AutoModel:
    """Base of the `AutoModelFor*` classes; `task` names the row of each folder's table."""

    task: str = "base"

    def __init__(self):
        raise TypeError(f"use {type(self).__name__}.from_pretrained(...) or .from_config(...)")

    @classmethod
    def model_class(cls, config: Config) -> type:
        module = model_module(config.model_type)
        tasks = module.TASKS
        if cls.task not in tasks:
            have = ", ".join(sorted(tasks))
            raise ConfigError(
                f"{cls.__name__}: model_type {config.model_type!r} has no {cls.task!r} model; "
                f"it has: {have}"
            )
        return getattr(module, tasks[cls.task])

    @classmethod
    def from_config(cls, config: Config, **kwargs):
        return cls.model_class(config)(config, **kwargs)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, *, config: Config | None = None,
                        gguf_file: str | None = None, **kwargs):
        if config is None:
            hub = _hub_kwargs(kwargs)
            model_kwargs = ("dtype", "torch_dtype", "device", "ignore_mismatched_sizes")
            overrides = {k: v for k, v in kwargs.items() if k not in hub and k not in model_kwargs}
            config = AutoConfig.from_pretrained(path_or_repo_id, **hub, **overrides)
            kwargs = {k: v for k, v in kwargs.items() if k not in overrides}
        model_cls = cls.model_class(config)
        return model_cls.from_pretrained(path_or_repo_id, config=config, **kwargs)


class AutoModel(_AutoModel):
    task = "base"


class AutoModelForMaskedLM(_AutoModel):
    task = "masked-lm"


class AutoModelForSequenceClassification(_AutoModel):
    task = "sequence-classification"


class AutoModelForTokenClassification(_AutoModel):
    task = "token-classification"


class AutoModelForQuestionAnswering(_AutoModel):
    task = "question-answering"


class AutoModelForPreTraining(_AutoModel):
    task = "pretraining"


class AutoTokenizer:
    """`AutoTokenizer.from_pretrained(path)`: loom has one tokenizer class over `tokenizers`."""

    def __init__(self):
        raise TypeError("use AutoTokenizer.from_pretrained(...)")

    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs):
        from .preprocessing.tokenizer import Tokenizer

        return Tokenizer.from_pretrained(path_or_repo_id, **kwargs)


def is_model_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


__all__ = [
    "AutoConfig", "AutoModel", "AutoModelForMaskedLM", "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification", "AutoModelForQuestionAnswering",
    "AutoModelForPreTraining", "AutoTokenizer",
]
