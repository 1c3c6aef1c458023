"""`GenerationConfig`: how `generate()` decodes, read from and written to
`generation_config.json` (the file transformers writes next to a model). No torch import.

Defaults are the reference's effective defaults (`max_new_tokens` 20 when no length is set,
`top_k=50` when sampling, ...). Every value is checked on construction and on `update`; a bad
one raises `ConfigError` naming the argument, e.g. `top_p` outside (0, 1] or `temperature <= 0`
with sampling. Unknown keys of a file are kept in `extra` and written back.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, InputError
from ..hub_push import PushToHubMixin
from ..io import atomic_folder, read_json

GENERATION_CONFIG_NAME = "generation_config.json"
DEFAULT_MAX_NEW_TOKENS = 20  # when neither max_length nor max_new_tokens is set, as the reference


@dataclass(kw_only=True)
class GenerationConfig(PushToHubMixin):
    # length
    max_length: int | None = None  # prompt included; None: DEFAULT_MAX_NEW_TOKENS new tokens
    max_new_tokens: int | None = None  # wins over max_length
    min_length: int = 0  # prompt included
    min_new_tokens: int | None = None
    stop_strings: str | list[str] | None = None  # needs generate(tokenizer=...)
    # strategy
    do_sample: bool = False
    num_beams: int = 1
    num_return_sequences: int = 1
    early_stopping: bool | str = False  # beam search: True, False or "never"
    length_penalty: float = 1.0  # beam scores are divided by length ** length_penalty
    use_cache: bool = True
    # logits processing
    temperature: float = 1.0
    top_k: int | None = 50  # sampling only; 0 or None: off
    top_p: float = 1.0  # sampling only; 1.0: off
    min_p: float | None = None  # sampling only
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    # special tokens
    pad_token_id: int | None = None  # None: the first eos token
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    decoder_start_token_id: int | None = None  # encoder-decoder models: the decoder's first token
    forced_bos_token_id: int | None = None  # the first generated token (multilingual translation)
    forced_eos_token_id: int | list[int] | None = None  # the last token when max_length is reached
    suppress_tokens: list[int] | None = None  # never generated
    begin_suppress_tokens: list[int] | None = None  # not generated as the first new token
    # outputs
    return_dict_in_generate: bool = False
    output_scores: bool = False
    output_logits: bool = False
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.validate()

    # -- checks ---------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise ConfigError naming the first argument whose value cannot work."""
        for name in ("do_sample", "use_cache", "return_dict_in_generate", "output_scores", "output_logits"):
            if not isinstance(getattr(self, name), bool):
                _bad(name, getattr(self, name), "True or False")
        _check_int("max_length", self.max_length, 1, optional=True)
        _check_int("max_new_tokens", self.max_new_tokens, 1, optional=True)
        _check_int("min_length", self.min_length, 0)
        _check_int("min_new_tokens", self.min_new_tokens, 0, optional=True)
        _check_int("num_beams", self.num_beams, 1)
        _check_int("num_return_sequences", self.num_return_sequences, 1)
        _check_int("top_k", self.top_k, 0, optional=True)
        _check_int("no_repeat_ngram_size", self.no_repeat_ngram_size, 0)
        for name in ("temperature", "top_p", "repetition_penalty", "length_penalty"):
            if not _is_number(getattr(self, name)):
                _bad(name, getattr(self, name), "a number")
        if self.do_sample and self.temperature <= 0:
            _bad("temperature", self.temperature, "> 0 when do_sample=True (use do_sample=False for greedy)")
        if not 0 < self.top_p <= 1:
            _bad("top_p", self.top_p, "in (0, 1]")
        if self.min_p is not None and not (_is_number(self.min_p) and 0 <= self.min_p <= 1):
            _bad("min_p", self.min_p, "in [0, 1] or None")
        if self.repetition_penalty <= 0:
            _bad("repetition_penalty", self.repetition_penalty, "> 0 (1.0: off)")
        if self.early_stopping not in (True, False, "never"):
            _bad("early_stopping", self.early_stopping, "True, False or 'never'")
        if self.num_beams == 1 and self.num_return_sequences > 1 and not self.do_sample:
            _bad("num_return_sequences", self.num_return_sequences, "1 for greedy decoding (sample or use beams)")
        if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
            _bad("num_return_sequences", self.num_return_sequences, f"<= num_beams={self.num_beams}")
        for name in ("pad_token_id", "bos_token_id", "decoder_start_token_id", "forced_bos_token_id"):
            _check_int(name, getattr(self, name), 0, optional=True)
        for name in ("eos_token_id", "forced_eos_token_id"):
            ids = getattr(self, name)
            if ids is not None and not (_token_ids(ids) and ids != []):
                _bad(name, ids, "a token id or a non-empty list of them")
        for name in ("suppress_tokens", "begin_suppress_tokens"):
            ids = getattr(self, name)
            if ids is not None and not (isinstance(ids, (list, tuple)) and _token_ids(ids)):
                _bad(name, ids, "a list of token ids or None")
        stops = self.stop_strings
        if stops is not None:
            items = [stops] if isinstance(stops, str) else stops
            if not isinstance(items, (list, tuple)) or not items or not all(isinstance(s, str) and s for s in items):
                _bad("stop_strings", stops, "a non-empty string or list of them")

    # -- derived values -------------------------------------------------------------------

    @property
    def eos_ids(self) -> list[int]:
        eos = self.eos_token_id
        return [] if eos is None else list(eos) if isinstance(eos, (list, tuple)) else [eos]

    @property
    def stop_string_list(self) -> list[str]:
        s = self.stop_strings
        return [] if s is None else [s] if isinstance(s, str) else list(s)

    # -- building -------------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)} - {"extra"}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides) -> GenerationConfig:
        data = {**data, **overrides}
        names = cls.field_names()
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names and k != "transformers_version"}
        config = cls(**known, extra=extra)
        object.__setattr__(config, "_file_keys", set(known))
        return config

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> GenerationConfig:
        data = read_json(path, what="generation config")
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **hub_kwargs) -> GenerationConfig:
        from ..hub import resolve

        return cls.from_json_file(resolve(path_or_repo_id, GENERATION_CONFIG_NAME, **hub_kwargs))

    @classmethod
    def from_model_config(cls, config) -> GenerationConfig:
        """The special tokens (and the token rules older checkpoints keep in config.json) of a
        model's config; every other value at its default."""
        keys = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id", "forced_bos_token_id",
                "forced_eos_token_id", "suppress_tokens", "begin_suppress_tokens")
        return cls(**{k: getattr(config, k, None) for k in keys})

    def update(self, **kwargs) -> GenerationConfig:
        """A validated copy with `kwargs` set; an unknown name raises InputError naming it."""
        unknown = sorted(set(kwargs) - self.field_names())
        if unknown:
            raise InputError(f"generate() got unknown arguments {unknown}; generation arguments are "
                             f"{', '.join(sorted(self.field_names()))}")
        new = copy.deepcopy(self)
        for key, value in kwargs.items():
            setattr(new, key, value)
        new.validate()
        return new

    # -- writing --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Values that differ from the defaults, keys the file had, and the unknown keys."""
        keep = self.__dict__.get("_file_keys", set())
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in keep or value != f.default:
                out[f.name] = copy.deepcopy(value)
        out.update(copy.deepcopy(self.extra))
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        with atomic_folder(save_directory) as tmp:
            (tmp / GENERATION_CONFIG_NAME).write_text(self.to_json_string(), encoding="utf-8")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _token_ids(value) -> bool:
    """An id >= 0, or a list of them."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in items)


def _bad(name: str, value, expected: str):
    raise ConfigError(f"generation argument {name} must be {expected}, found {value!r}")


def _check_int(name: str, value, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        _bad(name, value, f"an int >= {minimum}" + (" or None" if optional else ""))


__all__ = ["GenerationConfig", "GENERATION_CONFIG_NAME", "DEFAULT_MAX_NEW_TOKENS"]
