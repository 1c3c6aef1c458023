"""`Processor`: several preprocessors under one name, for models that take more than text.

A processor bundles named parts (a tokenizer, an image processor, later an audio feature
extractor) and routes each modality of a call to its part: `text=` to the tokenizer,
`images=` to the image processor, `audio=` to the feature extractor; the outputs are merged
into one `BatchFeature`. It saves `processor_config.json` (the processor's class and own
settings) and lets every part write its own files (tokenizer.json, preprocessor_config.json),
so `transformers` 4.x and 5.x both read the folder; it reads the 5.x layout too, where the
image processor's settings sit inside `processor_config.json`.

`BatchFeature`, the dict every non-text preprocessor returns, lives here as well.
NumPy only: torch is imported only for `return_tensors="pt"`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, InputError
from ..hub_push import PushToHubMixin
from ..io import atomic_folder, read_json, write_json

logger = logging.getLogger(__name__)

PROCESSOR_FILE = "processor_config.json"
TENSOR_TYPES = ("np", "pt")
_HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token", "subfolder")

# How each kind of part is loaded ("module:attribute" with a `from_pretrained`), and which
# call argument it serves. A later part kind (an audio feature extractor) adds a row here.
PART_LOADERS: dict[str, str] = {
    "tokenizer": "loom.auto:AutoTokenizer",
    "image_processor": "loom.auto:AutoImageProcessor",
    "feature_extractor": "loom.auto:AutoFeatureExtractor",
}
MODALITIES: dict[str, str] = {"text": "tokenizer", "images": "image_processor",
                              "audio": "feature_extractor"}


def check_tensor_type(value) -> None:
    if value is not None and value not in TENSOR_TYPES:
        raise InputError(f"return_tensors must be one of {TENSOR_TYPES} or None, found {value!r}")


class BatchFeature(dict):
    """A dict of model inputs (`pixel_values`, `input_ids`, ...) with attribute access."""

    def __init__(self, data: dict | None = None, tensor_type: str | None = None):
        super().__init__(data or {})
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchFeature has no key {name!r}; it has {sorted(self)}") from None

    def convert_to_tensors(self, tensor_type: str) -> BatchFeature:
        """Stack every list of arrays into one NumPy array ("np") or torch tensor ("pt")."""
        check_tensor_type(tensor_type)
        for key, value in self.items():
            if type(value).__module__.startswith("torch"):
                continue
            if isinstance(value, (list, tuple)):
                shapes = {np.shape(v) for v in value}
                if len(shapes) > 1:
                    raise InputError(
                        f"cannot make {tensor_type!r} tensors of {key!r}: its items have shapes "
                        f"{sorted(shapes)}; make them equal (e.g. resize images to one size)"
                    )
                value = np.stack(value) if value and isinstance(value[0], np.ndarray) else np.asarray(value)
            if tensor_type == "pt" and isinstance(value, np.ndarray):
                import torch

                value = torch.from_numpy(np.ascontiguousarray(value))
            self[key] = value
        return self

    def to(self, *args, **kwargs) -> BatchFeature:
        """Move (or cast) every torch tensor, like `Tensor.to`; floating casts skip int ids."""
        for key, value in self.items():
            if not callable(getattr(value, "to", None)) or isinstance(value, np.ndarray):
                raise InputError(
                    f"BatchFeature.to() moves torch tensors, but {key!r} is a {type(value).__name__};"
                    f" call the preprocessor with return_tensors='pt'"
                )
            dtype_cast = any(getattr(a, "is_floating_point", False) for a in args) or \
                getattr(kwargs.get("dtype"), "is_floating_point", False)
            if dtype_cast and not value.is_floating_point():
                # ids and masks keep their integer dtype; only the device moves.
                device = next((a for a in args if not hasattr(a, "is_floating_point")), kwargs.get("device"))
                self[key] = value if device is None else value.to(device)
            else:
                self[key] = value.to(*args, **kwargs)
        return self


def _load_attr(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


class Processor(PushToHubMixin):
    """Named preprocessors used together. Subclasses name their parts in `PARTS` (in the
    order `transformers` takes them positionally); the base class takes any named parts."""

    PARTS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args, **parts):
        names = self.PARTS or tuple(parts)
        if len(args) > len(names):
            raise InputError(f"{type(self).__name__} takes the parts {names}; found {len(args)} positional arguments")
        given = dict(zip(names, args))
        for name, part in parts.items():
            if name in given:
                raise InputError(f"{type(self).__name__}: part {name!r} given twice")
            given[name] = part
        if self.PARTS:
            unknown = sorted(set(given) - set(self.PARTS))
            missing = [n for n in self.PARTS if given.get(n) is None]
            if unknown or missing:
                raise InputError(
                    f"{type(self).__name__} takes the parts {self.PARTS}; "
                    f"missing {missing}, unknown {unknown}"
                )
        if not given:
            raise InputError("a Processor needs at least one part, e.g. Processor(tokenizer=..., image_processor=...)")
        self.parts: dict[str, Any] = {n: p for n, p in given.items() if p is not None}
        self.extra: dict[str, Any] = {}  # processor_config.json keys loom does not use, kept

    def __getattr__(self, name: str):
        parts = self.__dict__.get("parts", {})
        if name in parts:
            return parts[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or part {name!r}")

    # -- calling --------------------------------------------------------------------------

    def __call__(self, text=None, images=None, audio=None, *, return_tensors: str | None = None,
                 text_kwargs: dict | None = None, images_kwargs: dict | None = None,
                 audio_kwargs: dict | None = None, **kwargs) -> BatchFeature:
        """Run each given modality through its part and merge the outputs.

        Keyword arguments go to every part whose call accepts them (`padding=` to the
        tokenizer, `size=` to the image processor); `text_kwargs=` / `images_kwargs=` /
        `audio_kwargs=` pass arguments to one part only.
        """
        check_tensor_type(return_tensors)
        inputs = {"text": (text, text_kwargs), "images": (images, images_kwargs), "audio": (audio, audio_kwargs)}
        given = {m: v for m, v in inputs.items() if v[0] is not None}
        if not given:
            raise InputError(f"{type(self).__name__} needs at least one of text=, images=, audio=")
        calls = {}
        for modality, (value, own) in given.items():
            part_name = MODALITIES[modality]
            if part_name not in self.parts:
                raise InputError(f"{type(self).__name__} has no {part_name} for {modality}=; its parts are {sorted(self.parts)}")
            calls[modality] = (self.parts[part_name], value, dict(own or {}))
        routed = self._route(kwargs, {m: c[0] for m, c in calls.items()})
        merged = BatchFeature()
        for modality, (part, value, own) in calls.items():
            out = part(value, return_tensors=return_tensors, **{**routed[modality], **own})  # own wins
            for key, item in out.items():
                if key in merged:
                    raise InputError(f"{type(self).__name__}: two parts both return {key!r}")
                merged[key] = item
        return merged

    def _route(self, kwargs: dict, parts: dict[str, Any]) -> dict[str, dict]:
        routed: dict[str, dict] = {m: {} for m in parts}
        for key, value in kwargs.items():
            takers = [m for m, part in parts.items() if _accepts(part, key)]
            if not takers:
                raise InputError(
                    f"{type(self).__name__}: no part called here takes the argument {key!r} "
                    f"(parts called: {', '.join(MODALITIES[m] for m in parts)})"
                )
            for m in takers:
                routed[m][key] = value
        return routed

    # -- the tokenizer's side -------------------------------------------------------------

    def _tokenizer(self):
        if "tokenizer" not in self.parts:
            raise InputError(f"{type(self).__name__} has no tokenizer to decode with")
        return self.parts["tokenizer"]

    def decode(self, *args, **kwargs):
        return self._tokenizer().decode(*args, **kwargs)

    def batch_decode(self, *args, **kwargs):
        return self._tokenizer().batch_decode(*args, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        names: list[str] = []
        for part in self.parts.values():
            names += [n for n in getattr(part, "model_input_names", []) if n not in names]
        return names

    # -- files ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "processor_class": type(self).__name__}

    def save_pretrained(self, save_directory: str | os.PathLike) -> list[str]:
        """Write processor_config.json and each part's own files into one folder."""
        written: list[str] = []
        target = Path(save_directory)
        with atomic_folder(target) as tmp:
            for part in self.parts.values():
                written += [str(f) for f in part.save_pretrained(tmp)]
            write_json(tmp / PROCESSOR_FILE, self.to_dict())
        return sorted({Path(f).name for f in written} | {PROCESSOR_FILE})

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs) -> Processor:
        """Load every part from a folder or Hub repo. On the base class, the class named in
        processor_config.json is used when loom has it; otherwise the parts present load."""
        from ..hub import pin, resolve

        kwargs["revision"] = pin(path_or_repo_id, kwargs.get("revision"))  # every part from one commit
        hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
        config_path = resolve(path_or_repo_id, PROCESSOR_FILE, required=False, **hub)
        config = read_json(config_path, what="processor config") if config_path else {}
        named = config.get("processor_class")
        if cls is Processor and named and named != "Processor":
            from ..auto import preprocessor_class

            found = preprocessor_class(named)
            if found is not None:
                return found.from_pretrained(path_or_repo_id, **kwargs)
        names = cls.PARTS or cls._parts_present(path_or_repo_id, config, hub)
        overrides = _split_overrides({k: v for k, v in kwargs.items() if k not in hub}, names)
        parts = {}
        for name in names:
            if name not in PART_LOADERS:
                raise ConfigError(f"{cls.__name__}: loom cannot load a part named {name!r}; it loads {sorted(PART_LOADERS)}")
            parts[name] = _load_attr(PART_LOADERS[name]).from_pretrained(path_or_repo_id, **hub, **overrides[name])
        processor = cls(**parts)
        processor.extra = {k: v for k, v in config.items()
                           if k != "processor_class" and k not in PART_LOADERS and k not in MODALITIES.values()}
        return processor

    @staticmethod
    def _parts_present(path_or_repo_id, config: dict, hub: dict) -> list[str]:
        from ..hub import resolve
        from .image import PREPROCESSOR_FILE

        names = []
        if any(resolve(path_or_repo_id, f, required=False, **hub) for f in ("tokenizer.json", "vocab.txt")):
            names.append("tokenizer")
        preprocessor = resolve(path_or_repo_id, PREPROCESSOR_FILE, required=False, **hub)
        if preprocessor is not None and "sampling_rate" in read_json(preprocessor, what=PREPROCESSOR_FILE):
            names.append("feature_extractor")  # audio settings
        elif "image_processor" in config or preprocessor is not None:
            names.append("image_processor")
        if not names:
            raise ConfigError(f"no preprocessor files in {path_or_repo_id}: looked for tokenizer.json, vocab.txt, "
                              f"{PREPROCESSOR_FILE} and an image_processor entry in {PROCESSOR_FILE}")
        return names

    def __repr__(self) -> str:
        parts = "\n".join(f"- {n}: {p!r}" for n, p in self.parts.items())
        return f"{type(self).__name__}:\n{parts}\n{json.dumps(self.to_dict(), indent=2, sort_keys=True)}"


def _split_overrides(overrides: dict[str, Any], names) -> dict[str, dict[str, Any]]:
    """Settings given to `from_pretrained`: image processor settings to the image processor,
    the rest to the tokenizer (whose config takes any key)."""
    from .image import FIELDS

    out: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in overrides.items():
        owner = "image_processor" if key in FIELDS and "image_processor" in out else "tokenizer"
        if owner not in out:
            raise InputError(f"from_pretrained got {key}={value!r}, but no part of {sorted(out)} takes it")
        out[owner][key] = value
    return out


def _accepts(part, key: str) -> bool:
    """Whether `part(...)` takes keyword `key` by name (image processors list theirs)."""
    valid = getattr(part, "valid_kwargs", None)
    if valid is not None:
        return key in valid
    try:
        params = inspect.signature(part.__call__).parameters
    except (TypeError, ValueError):
        return False
    return key in params and params[key].kind in (inspect.Parameter.KEYWORD_ONLY,
                                                  inspect.Parameter.POSITIONAL_OR_KEYWORD)


ProcessorMixin = Processor

__all__ = ["BatchFeature", "Processor", "ProcessorMixin", "PROCESSOR_FILE", "PART_LOADERS", "MODALITIES"]
