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

_HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token", "subfolder", "force_download")


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
    def from_pretrained(path_or_repo_id: str | os.PathLike, *, gguf_file: str | None = None,
                        **kwargs) -> Config:
        from .hub import pin, resolve
        from .modeling.gguf import read_gguf, resolve_gguf

        hub = _hub_kwargs(kwargs)
        overrides = {k: v for k, v in kwargs.items() if k not in hub}
        hub["revision"] = pin(path_or_repo_id, hub.get("revision"))  # one commit per load
        path = resolve_gguf(path_or_repo_id, gguf_file, **hub)   # a GGUF file's metadata
        if path is not None:
            data = read_gguf(path).config_dict()
        else:
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
        from .hub import pin

        kwargs["revision"] = pin(path_or_repo_id, kwargs.get("revision"))  # config and weights: one commit
        if config is None:
            hub = _hub_kwargs(kwargs)
            model_kwargs = ("dtype", "torch_dtype", "device", "ignore_mismatched_sizes")
            overrides = {k: v for k, v in kwargs.items() if k not in hub and k not in model_kwargs}
            config = AutoConfig.from_pretrained(path_or_repo_id, gguf_file=gguf_file, **hub, **overrides)
            kwargs = {k: v for k, v in kwargs.items() if k not in overrides}
        if gguf_file is not None:
            kwargs["gguf_file"] = gguf_file
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


class AutoModelForCausalLM(_AutoModel):
    task = "causal-lm"


class AutoTokenizer:
    """`AutoTokenizer.from_pretrained(path)`: loom has one tokenizer class over `tokenizers`."""

    def __init__(self):
        raise TypeError("use AutoTokenizer.from_pretrained(...)")

    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs):
        from .preprocessing.tokenizer import Tokenizer

        cls = Tokenizer
        if kwargs.get("gguf_file") is None and not str(path_or_repo_id).endswith(".gguf"):
            from .hub import pin

            kwargs["revision"] = pin(path_or_repo_id, kwargs.get("revision"))  # both reads: one commit
            hub = {k: v for k, v in _hub_kwargs(kwargs).items() if k != "force_download"}  # the load downloads
            cls = _model_tokenizer_class(path_or_repo_id, hub) or Tokenizer
        return cls.from_pretrained(path_or_repo_id, **kwargs)


def _model_tokenizer_class(path_or_repo_id, hub: dict[str, Any]) -> type | None:
    """A model folder's own tokenizer class (a `PREPROCESSORS["tokenizer"]`, e.g.
    WhisperTokenizer) when tokenizer_config.json names it ("Fast" suffix or not)."""
    from .hub import resolve
    from .preprocessing.tokenizer import Tokenizer

    # In the order Tokenizer.from_pretrained reads them, so that a Hub load still makes one
    # request (the first file names the commit; the tokenizer then reads both from the cache).
    resolve(path_or_repo_id, "tokenizer.json", required=False, **hub)
    path = resolve(path_or_repo_id, "tokenizer_config.json", required=False, **hub)
    name = read_json(path, what="tokenizer config").get("tokenizer_class") if path else None
    if not isinstance(name, str):
        return None
    cls = preprocessor_class(name.removesuffix("Fast"))
    return cls if isinstance(cls, type) and issubclass(cls, Tokenizer) else None


class AutoModelForImageClassification(_AutoModel):
    task = "image-classification"


class AutoModelForZeroShotImageClassification(_AutoModel):
    task = "zero-shot-image-classification"


class AutoModelForSeq2SeqLM(_AutoModel):
    task = "seq2seq-lm"


class AutoModelForSpeechSeq2Seq(_AutoModel):
    task = "speech-seq2seq"


def preprocessor_class(name: str) -> type | None:
    """The loom image processor or processor class a file names ("CLIPProcessor"), or None.

    Model folders list theirs in `PREPROCESSORS` (role -> class name); their `__init__`
    imports no torch, so looking through all of them is cheap.
    """
    for folder in dict.fromkeys(m.split(".")[0] for m in MODEL_TYPES.values()):
        module = importlib.import_module(f"loom.models.{folder}")
        if name in getattr(module, "PREPROCESSORS", {}).values():
            return getattr(module, name)
    return None


def _preprocessor_for_model(path_or_repo_id, hub: dict[str, Any], role: str) -> type | None:
    """The `role` class ("image_processor", "processor") of the folder's config.json model_type."""
    from .hub import resolve

    path = resolve(path_or_repo_id, CONFIG_NAME, required=False, **hub)
    model_type = read_json(path, what="config file").get("model_type") if path else None
    if model_type not in MODEL_TYPES:
        return None
    module = model_module(model_type)
    name = getattr(module, "PREPROCESSORS", {}).get(role)
    return getattr(module, name) if name else None


class AutoImageProcessor:
    """`AutoImageProcessor.from_pretrained(path)`: the class its preprocessor config names
    (`image_processor_type`, or the older `feature_extractor_type`), else the model's."""

    def __init__(self):
        raise TypeError("use AutoImageProcessor.from_pretrained(...)")

    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs):
        from .preprocessing.image import image_processor_class_name, load_image_processor_dict

        # transformers' backend switches (use_fast, backend) are dropped: loom has one backend, the PIL one's.
        return _from_settings(path_or_repo_id, kwargs, load_image_processor_dict, image_processor_class_name,
                              "image_processor", "image processor", drop=("use_fast", "backend"),
                              hint="; use loom.preprocessing.image.ImageProcessor.from_pretrained() to read the "
                                   "settings generically")


class AutoFeatureExtractor:
    """`AutoFeatureExtractor.from_pretrained(path)`: the audio feature extractor its
    preprocessor config names (`feature_extractor_type`), else the model's."""

    def __init__(self):
        raise TypeError("use AutoFeatureExtractor.from_pretrained(...)")

    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs):
        from .preprocessing.audio import load_feature_extractor_dict

        def class_name(config):
            name = config.get("feature_extractor_type")
            return name if isinstance(name, str) else None

        return _from_settings(path_or_repo_id, kwargs, load_feature_extractor_dict, class_name,
                              "feature_extractor", "feature extractor")


def _from_settings(path_or_repo_id, kwargs: dict, load_dict, class_name, role: str, what: str, *,
                   drop: tuple[str, ...] = (), hint: str = ""):
    """An image processor or feature extractor: its settings file (pinned to one commit), the
    class the file names (`class_name(settings)`), else the one of the model's `role`."""
    from .hub import pin

    kwargs["revision"] = pin(path_or_repo_id, kwargs.get("revision"))  # one commit per load
    hub = _hub_kwargs(kwargs)
    overrides = {k: v for k, v in kwargs.items() if k not in hub and k not in drop}
    config = load_dict(path_or_repo_id, **hub)
    name = class_name(config)
    cls = preprocessor_class(name) if name else _preprocessor_for_model(path_or_repo_id, hub, role)
    if cls is None:
        raise UnknownModelTypeError(
            f"{path_or_repo_id}: loom has no {what} {name or '(none named, and no known model_type)'}{hint}")
    return cls.from_dict(config, **overrides)


class AutoProcessor:
    """`AutoProcessor.from_pretrained(path)`: the processor class the folder names
    (processor_config.json, preprocessor_config.json or tokenizer_config.json
    "processor_class"), else the model's; a folder with a single preprocessor gives that one."""

    def __init__(self):
        raise TypeError("use AutoProcessor.from_pretrained(...)")

    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs):
        from .hub import pin, resolve

        kwargs["revision"] = pin(path_or_repo_id, kwargs.get("revision"))  # one commit per load
        hub = _hub_kwargs(kwargs)
        for filename in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
            path = resolve(path_or_repo_id, filename, required=False, **hub)
            name = read_json(path, what=filename).get("processor_class") if path else None
            cls = preprocessor_class(name) if isinstance(name, str) else None
            if cls is not None:
                return cls.from_pretrained(path_or_repo_id, **kwargs)
            if name == "Processor":  # loom's generic bundle
                from .preprocessing.processor import Processor

                return Processor.from_pretrained(path_or_repo_id, **kwargs)
        cls = _preprocessor_for_model(path_or_repo_id, hub, "processor")
        if cls is not None:
            return cls.from_pretrained(path_or_repo_id, **kwargs)
        has_text = any(resolve(path_or_repo_id, f, required=False, **hub) for f in ("tokenizer.json", "vocab.txt"))
        has_image = resolve(path_or_repo_id, "preprocessor_config.json", required=False, **hub) is not None
        if has_text and has_image:  # both parts, no class named: bundle them rather than drop one
            from .preprocessing.processor import Processor

            return Processor.from_pretrained(path_or_repo_id, **kwargs)
        if has_text:
            return AutoTokenizer.from_pretrained(path_or_repo_id, **kwargs)
        return AutoImageProcessor.from_pretrained(path_or_repo_id, **kwargs)


def is_model_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


__all__ = [
    "AutoConfig", "AutoModel", "AutoModelForMaskedLM", "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification", "AutoModelForQuestionAnswering",
    "AutoModelForPreTraining", "AutoModelForCausalLM", "AutoTokenizer",
    "AutoModelForImageClassification", "AutoModelForZeroShotImageClassification",
    "AutoImageProcessor", "AutoProcessor", "AutoModelForSeq2SeqLM", "AutoModelForSpeechSeq2Seq",
    "AutoFeatureExtractor",
]
