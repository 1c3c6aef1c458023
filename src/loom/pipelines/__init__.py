"""`pipeline(task, model=...)`: a callable from raw inputs to plain Python results.

    from loom import pipeline
    classify = pipeline("text-classification", model="path/or/repo-id")
    classify(["great film", "dull film"], top_k=2)

The task table maps each task to its pipeline class; the model class that serves it comes
from the model folder's own TASKS table (the row named by the pipeline's `model_task`), so
nothing here knows a particular architecture. Importing this module imports no torch.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, InputError


def _default_text_model() -> Path:
    from ..embeddings import default_model_path

    return default_model_path()


def _default_generation_model() -> Path:
    from ..defaults import default_generation_model_path

    return default_generation_model_path()


@dataclass(frozen=True)
class TaskSpec:
    module: str                                   # loom.pipelines.<module>
    cls: str                                      # the Pipeline subclass in it
    default: Callable[[], Any] | None = None      # the offline default model, if the task has one

    def pipeline_class(self):
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), self.cls)


TASKS: dict[str, TaskSpec] = {
    "feature-extraction": TaskSpec("feature_extraction", "FeatureExtractionPipeline", _default_text_model),
    "sentence-similarity": TaskSpec("feature_extraction", "SentenceSimilarityPipeline", _default_text_model),
    "text-classification": TaskSpec("text_classification", "TextClassificationPipeline"),
    "token-classification": TaskSpec("token_classification", "TokenClassificationPipeline"),
    "question-answering": TaskSpec("question_answering", "QuestionAnsweringPipeline"),
    "fill-mask": TaskSpec("fill_mask", "FillMaskPipeline"),
    "zero-shot-classification": TaskSpec("zero_shot_classification", "ZeroShotClassificationPipeline"),
    "text-generation": TaskSpec("text_generation", "TextGenerationPipeline", _default_generation_model),
    "image-classification": TaskSpec("image_classification", "ImageClassificationPipeline"),
    "image-feature-extraction": TaskSpec("image_feature_extraction", "ImageFeatureExtractionPipeline"),
    "zero-shot-image-classification": TaskSpec("zero_shot_image_classification",
                                               "ZeroShotImageClassificationPipeline"),
    "text2text-generation": TaskSpec("text2text_generation", "Text2TextGenerationPipeline"),
    "summarization": TaskSpec("text2text_generation", "SummarizationPipeline"),
    "translation": TaskSpec("text2text_generation", "TranslationPipeline"),
    "automatic-speech-recognition": TaskSpec("automatic_speech_recognition", "AutomaticSpeechRecognitionPipeline"),
}
ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}
# Tasks whose model families loom does not have yet: asking for one says so.
NOT_YET: dict[str, str] = {}
# The task a checkpoint serves, from the end of its architecture's class name.
ARCHITECTURE_TASKS = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForImageClassification", "image-classification"),
    ("ForConditionalGeneration", None),   # text2text or speech: the model folder's TASKS say
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("Model", "feature-extraction"),
)
_HUB = ("cache_dir", "local_files_only", "token", "gguf_file")


def pipeline(task: str | None = None, model=None, tokenizer=None, image_processor=None,
             feature_extractor=None, processor=None, device=None, dtype=None,
             batch_size: int | None = None, revision: str | None = None, **kwargs):
    """Build the pipeline of `task` on `model` (a Hub repo id, a local folder or a loaded
    model). Other keyword arguments are hub options (`cache_dir`, `local_files_only`,
    `token`), `model_kwargs` (passed to `from_pretrained`), or the task's call parameters,
    which become its defaults."""
    asked = task
    task = resolve_task(task, model)
    spec = TASKS[task]
    cls = spec.pipeline_class()
    if task == "translation" and isinstance(asked, str):
        kwargs["task"] = asked   # "translation_en_to_de" names the task's settings in the config
    needs_audio = getattr(cls, "needs_feature_extractor", False)
    if feature_extractor is not None and not needs_audio:
        raise InputError(f"pipeline({task!r}) does not use feature_extractor= (audio); it takes"
                         " tokenizer= (text), image_processor= (images) or processor= (both)")
    if model is None:
        if spec.default is None:
            raise InputError(f"pipeline({task!r}) has no default model: name one with model=..."
                             f" (a Hub repo id or a local folder of a model that serves {task})")
        model = spec.default()
    hub = {"revision": revision, **{k: kwargs.pop(k) for k in _HUB if k in kwargs}}
    model_kwargs = kwargs.pop("model_kwargs", None) or {}
    model, source = load_model(model, cls, task, device=device, dtype=dtype, hub=hub, **model_kwargs)
    if processor is not None:   # a processor's parts stand for the preprocessors not given
        parts = _processor_parts(processor, hub)
        tokenizer = tokenizer if tokenizer is not None else parts.get("tokenizer")
        image_processor = image_processor if image_processor is not None else parts.get("image_processor")
        feature_extractor = feature_extractor if feature_extractor is not None else parts.get("feature_extractor")
    if cls.needs_tokenizer:
        tokenizer = _load_preprocessor(tokenizer, source, "tokenizer", task, hub)
    if cls.needs_image_processor:
        image_processor = _load_preprocessor(image_processor, source, "image_processor", task, hub)
    if needs_audio:
        kwargs["feature_extractor"] = _load_preprocessor(feature_extractor, source, "feature_extractor", task, hub)
    kwargs = {**_folder_defaults(cls, source), **kwargs}
    return cls(model, tokenizer, image_processor=image_processor, batch_size=batch_size, **kwargs)


def resolve_task(task: str | None, model) -> str:
    """The canonical task name, or a loom error listing the tasks."""
    if task is None:
        return _task_of(model)
    if not isinstance(task, str):
        raise InputError(f"task must be a str, found {type(task).__name__}")
    task = ALIASES.get(task, task)
    if re.fullmatch(r"translation_.+_to_.+", task):
        task = "translation"
    if task in NOT_YET:
        raise ConfigError(f"the {task!r} task needs {NOT_YET[task]}, a model family loom does not"
                          f" have yet; loom's tasks are: {', '.join(available_tasks())}")
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; loom's tasks are: {', '.join(available_tasks())}")
    return task


def available_tasks() -> list[str]:
    return sorted([*TASKS, *ALIASES])


def _task_of(model) -> str:
    """The task named by a checkpoint's architecture, when no task is given."""
    if model is None:
        raise InputError(f"pipeline() needs a task or a model; tasks: {', '.join(available_tasks())}")
    from ..auto import AutoConfig, model_module

    if isinstance(model, (str, os.PathLike)):
        config = AutoConfig.from_pretrained(model)
        architectures = config.architectures or []
    else:
        config, architectures = getattr(model, "config", None), [type(model).__name__]
    for name in architectures:
        for suffix, task in ARCHITECTURE_TASKS:
            if name.endswith(suffix) and task is None and config is not None:
                tasks = model_module(config.model_type).TASKS
                task = "automatic-speech-recognition" if "speech-seq2seq" in tasks else "text2text-generation"
            if name.endswith(suffix) and task in TASKS:
                return task
    raise InputError(f"cannot tell the task of {model} (architectures {architectures}); pass the"
                     f" task: one of {', '.join(available_tasks())}")


def load_model(model, cls, task: str, *, device=None, dtype=None, hub: dict, **model_kwargs):
    """The model that serves `cls.model_task`, loaded or checked, on `device` in `dtype`;
    returns it and the folder or repo id it came from (None when it was given loaded)."""
    import torch

    from ..auto import AutoConfig

    device = _device(device)
    if isinstance(model, (str, os.PathLike)):
        config = AutoConfig.from_pretrained(model, **hub)
        model_cls = _model_class(config, cls, task)
        loaded = model_cls.from_pretrained(model, config=config, dtype=dtype, device=device,
                                           **{k: v for k, v in hub.items() if v is not None},
                                           **model_kwargs)
        return loaded, model
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
        raise InputError(f"model must be a Hub repo id, a folder or a loaded loom model, found"
                         f" {type(model).__name__}")
    model_cls = _model_class(model.config, cls, task)
    if not isinstance(model, model_cls):
        raise InputError(f"{task} needs a {model_cls.__name__}, found {type(model).__name__}")
    if dtype not in (None, "auto"):
        model.to(dtype=_torch_dtype(dtype))
    if device is not None:
        model.to(device)
    return model, getattr(model, "name_or_path", None)


def _model_class(config, cls, task: str):
    from ..auto import model_module

    module = model_module(config.model_type)
    name = module.TASKS.get(cls.model_task)
    if name is None:
        raise ConfigError(f"{task} needs a {cls.model_task!r} model and model_type"
                          f" {config.model_type!r} has none; it has: {', '.join(sorted(module.TASKS))}")
    return getattr(module, name)


def _load_preprocessor(given, source, what: str, task: str, hub: dict):
    if given is not None and not isinstance(given, (str, os.PathLike)):
        return given
    where = given if given is not None else source
    if where is None:
        raise InputError(f"pipeline({task!r}) with a loaded model needs {what}= (an object or"
                         " the folder / Hub repo id to load it from)")
    hub = {k: v for k, v in hub.items() if v is not None}
    if what == "tokenizer":
        from ..auto import AutoTokenizer

        return AutoTokenizer.from_pretrained(where, **hub)
    if what == "feature_extractor":
        from ..auto import AutoFeatureExtractor

        return AutoFeatureExtractor.from_pretrained(where, **hub)
    from ..auto import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(where, **hub)


def _processor_parts(processor, hub: dict) -> dict:
    if isinstance(processor, (str, os.PathLike)):
        from ..auto import AutoProcessor

        processor = AutoProcessor.from_pretrained(processor, **{k: v for k, v in hub.items() if v is not None})
    parts = getattr(processor, "parts", None)
    if not isinstance(parts, dict):
        raise InputError(f"processor must be a loom Processor or the folder of one, found"
                         f" {type(processor).__name__}")
    return parts


def _folder_defaults(cls, source) -> dict:
    """Settings a sentence-transformers folder declares (pooling, max length) for the
    embedding tasks, as defaults the call can override."""
    if source is None or cls.task not in ("feature-extraction", "sentence-similarity"):
        return {}
    from ..embeddings import sentence_transformers_settings

    settings = sentence_transformers_settings(source)
    out = {"max_length": settings["max_length"]} if settings.get("max_length") else {}
    if cls.task == "sentence-similarity" and settings.get("pooling"):
        out["pooling"] = settings["pooling"]
    return out


def _device(device):
    """transformers' device forms: None, -1 (CPU), an int (CUDA index), a str, a torch.device."""
    if device is None or not isinstance(device, int) or isinstance(device, bool):
        return device
    return "cpu" if device < 0 else f"cuda:{device}"


def _torch_dtype(dtype):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype):
        raise InputError(f"dtype must be a torch dtype or its name, found {dtype!r}")
    return value


__all__ = ["pipeline", "TASKS", "ALIASES", "NOT_YET", "available_tasks", "resolve_task"]
