"""`Config`: the typed configuration every model is built from.

A model's config is a dataclass subclass with `model_type` equal to its folder name. It reads
the Hugging Face `config.json` of that type as is: known keys become typed fields (checked on
construction), unknown keys are kept in `extra` and written back unchanged, so a config.json
round-trips key for key. No torch import.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ConfigError
from .hub_push import PushToHubMixin
from .io import atomic_folder, read_json

CONFIG_NAME = "config.json"

# Keys that only describe how a file was written; never fields, but kept when present.
_DTYPE_KEYS = ("dtype", "torch_dtype")


@dataclass(kw_only=True)
class Config(PushToHubMixin):
    """Fields shared by every model. Subclasses add their own typed fields."""

    model_type: ClassVar[str] = ""
    # HF-style aliases: {"n_embd": "hidden_size"} lets old key names read and write.
    attribute_map: ClassVar[dict[str, str]] = {}

    architectures: list[str] | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    num_labels: int | None = None  # derived from id2label when that is given
    problem_type: str | None = None  # regression | single_label_classification | multi_label_classification
    output_hidden_states: bool = False
    output_attentions: bool = False
    return_dict: bool = True
    dtype: str | None = None  # the checkpoint's dtype, e.g. "float32"; read from torch_dtype too
    pruned_heads: dict[int, list[int]] = field(default_factory=dict)
    tie_word_embeddings: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    # Unknown keys of the file, written back unchanged.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._check_types()
        if self.id2label is not None:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
            if self.num_labels is not None and self.num_labels != len(self.id2label):
                raise ConfigError(
                    f"num_labels={self.num_labels} does not match id2label, which has "
                    f"{len(self.id2label)} labels"
                )
            self.num_labels = len(self.id2label)
        else:
            n = 2 if self.num_labels is None else self.num_labels
            if n < 0:
                raise ConfigError(f"num_labels must be >= 0, found {n}")
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}
            self.num_labels = n
        if self.label2id is None or len(self.label2id) != len(self.id2label):
            self.label2id = {v: k for k, v in self.id2label.items()}
        else:
            self.label2id = {str(k): int(v) for k, v in self.label2id.items()}
        self.pruned_heads = {int(k): sorted(set(v)) for k, v in self.pruned_heads.items()}
        _valid = (None, "regression", "single_label_classification", "multi_label_classification")
        if self.problem_type not in _valid:
            raise ConfigError(f"problem_type must be one of {_valid[1:]}, found {self.problem_type!r}")

    # -- typing ---------------------------------------------------------------------------

    @classmethod
    def _hints(cls) -> dict[str, Any]:
        cached = cls.__dict__.get("_hint_cache")
        if cached is None:
            cached = typing.get_type_hints(cls)
            cls._hint_cache = cached
        return cached

    def _check_types(self) -> None:
        hints = self._hints()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _matches(value, hints.get(f.name, Any)):
                # Accept ints for floats and JSON's lists for tuples; reject the rest.
                raise ConfigError(
                    f"{type(self).__name__}.{f.name} expects {_type_name(hints[f.name])}, "
                    f"found {value!r} ({type(value).__name__})"
                )

    def __setattr__(self, name, value):
        if name == "num_labels" and "id2label" in self.__dict__ and value is not None:
            if self.id2label is not None and value != len(self.id2label):
                object.__setattr__(self, "id2label", {i: f"LABEL_{i}" for i in range(value)})
                object.__setattr__(self, "label2id", {f"LABEL_{i}": i for i in range(value)})
        name = self.attribute_map.get(name, name)
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when normal lookup fails: aliases, then unknown keys of the file.
        if name.startswith("__") or name in ("extra", "attribute_map"):
            raise AttributeError(name)
        alias = type(self).attribute_map.get(name)
        if alias is not None:
            return getattr(self, alias)
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # -- reading --------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides) -> Config:
        """Build from a config.json dict. Keyword `overrides` win over the file's keys."""
        data = {**data, **overrides}
        file_type = data.get("model_type")
        if cls.model_type and file_type and file_type != cls.model_type:
            aliases = getattr(cls, "model_type_aliases", ())
            if file_type not in aliases:
                raise ConfigError(
                    f"{cls.__name__} reads model_type {cls.model_type!r}, the config says "
                    f"{file_type!r}; use AutoConfig or the matching class"
                )
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs, extra = {}, {}
        dtype_key = "dtype"
        for key, value in data.items():
            key_name = cls.attribute_map.get(key, key)
            if key in _DTYPE_KEYS:
                if value is not None:
                    kwargs["dtype"] = _dtype_name(value)
                dtype_key = key
            elif key_name in names:
                kwargs[key_name] = value
            elif key != "model_type":
                extra[key] = value
        try:
            config = cls(**kwargs, extra=extra)
        except TypeError as e:
            raise ConfigError(f"{cls.__name__}: {e}") from None
        # How the file said things, so that writing it back gives the same keys and values.
        object.__setattr__(config, "_dtype_key", dtype_key)
        object.__setattr__(config, "_file_model_type", data.get("model_type"))
        nulls = {k: copy.deepcopy(getattr(config, k)) for k, v in kwargs.items() if v is None}
        object.__setattr__(config, "_derived_from_null", nulls)
        return config

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides) -> Config:
        return cls.from_dict(read_json(path, what="config file"), **overrides)

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo_id: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        subfolder: str | None = None,
        gguf_file: str | os.PathLike | None = None,
        force_download: bool = False,
        **overrides,
    ) -> Config:
        from .hub import pin, resolve
        from .modeling.gguf import read_gguf, resolve_gguf

        hub = dict(revision=pin(path_or_repo_id, revision), cache_dir=cache_dir,
                   local_files_only=local_files_only, token=token, subfolder=subfolder,
                   force_download=force_download)
        path = resolve_gguf(path_or_repo_id, gguf_file, **hub)   # a GGUF file's metadata
        if path is not None:
            data = read_gguf(path).config_dict()
        else:
            path = resolve(path_or_repo_id, CONFIG_NAME, **hub)
            data = read_json(path, what="config file")
        if cls is Config or not cls.model_type:  # the base class dispatches like AutoConfig
            from .auto import config_class_for

            return config_class_for(data, path).from_dict(data, **overrides)
        return cls.from_dict(data, **overrides)

    # -- writing --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The config.json dict: every field, the unknown keys, and `model_type`."""
        out: dict[str, Any] = {}
        internal = self.__dict__
        for f in dataclasses.fields(self):
            if f.name in ("extra", "num_labels"):
                continue
            value = copy.deepcopy(getattr(self, f.name))
            if f.name in internal.get("_derived_from_null", {}) and value == internal["_derived_from_null"][f.name]:
                value = None  # the file said null and the value was derived from other keys
            if f.name == "dtype":
                if value is not None:
                    out[internal.get("_dtype_key", "dtype")] = value
                continue
            if f.name in ("id2label", "pruned_heads") and value is not None:
                value = {str(k): v for k, v in value.items()}
            out[f.name] = value  # fields carry the checkpoint's key names
        for key, value in self.extra.items():
            out[key] = copy.deepcopy(value)
        out["model_type"] = internal.get("_file_model_type") or self.model_type
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        with atomic_folder(save_directory) as tmp:
            (tmp / CONFIG_NAME).write_text(self.to_json_string(), encoding="utf-8")

    # -- misc -----------------------------------------------------------------------------

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict

    def replace(self, **changes) -> Config:
        """A copy with some fields changed (validated again)."""
        return type(self).from_dict(self.to_dict(), **changes)

    def __eq__(self, other):
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"{type(self).__name__} {self.to_json_string()}"


PretrainedConfig = Config


def _dtype_name(value: Any) -> str:
    text = str(value)
    return text[len("torch."):] if text.startswith("torch.") else text


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any or value is None and _allows_none(hint):
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _allows_none(hint: Any) -> bool:
    return hint is type(None) or type(None) in typing.get_args(hint)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


__all__ = ["Config", "PretrainedConfig", "CONFIG_NAME"]
