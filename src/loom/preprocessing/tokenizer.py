"""Text tokenizers backed by the Hugging Face `tokenizers` library (Rust).

`Tokenizer` wraps one `tokenizers.Tokenizer` (any model: WordPiece, BPE, Unigram, WordLevel)
and reproduces the calling conventions of transformers 5.x `PreTrainedTokenizerFast`:
padding/truncation strategies, overflow windows, which outputs are nested for a single
string, special tokens, added tokens, decode, and a save format that `transformers` reads.

Differs from transformers: the pipeline in `tokenizer.json` is used as written (transformers
rebuilds BERT's normalizer and post-processor from `tokenizer_config.json`; the two agree for
files written by either library), `padding="max_length"` with no length anywhere raises
instead of silently not padding, and ragged outputs cannot become tensors (no object arrays).

NumPy only: torch is imported only when `return_tensors="pt"` is asked for.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as _Backend
from tokenizers.models import WordPiece

from ..errors import ConfigError, EntryNotFoundError, InputError, TokenizerError
from ..hub import pin, resolve
from ..hub_push import PushToHubMixin
from ..io import atomic_folder, read_json, write_json
from .inputs import as_batch, check_ids, check_int, collect, strategy, to_list
from .encoding import BatchEncoding, CharSpan, TokenSpan, check_tensor_type

logger = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
VOCAB_FILE = "vocab.txt"

# transformers' sentinels: a model_max_length above LARGE_INTEGER means "no limit".
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)

SPECIAL_TOKEN_NAMES = (
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
)
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
SIDES = ("right", "left")

_BERT_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                "cls_token": "[CLS]", "mask_token": "[MASK]"}
_ITA = ["input_ids", "token_type_ids", "attention_mask"]
_IAT = ["input_ids", "attention_mask", "token_type_ids"]
_LEFT = {"padding_side": "left"}

# Class-level defaults of the transformers tokenizer classes that `tokenizer_config.json`
# names in "tokenizer_class" (values the file itself does not repeat). Keys drop "Fast".
CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    "BertTokenizer": {"model_input_names": _ITA, **_BERT_TOKENS},
    "ElectraTokenizer": {"model_input_names": _ITA, **_BERT_TOKENS},
    "DistilBertTokenizer": {"model_input_names": ["input_ids", "attention_mask"], **_BERT_TOKENS},
    "DebertaTokenizer": {"model_input_names": _IAT},
    "DebertaV2Tokenizer": {"model_input_names": _IAT},
    "FNetTokenizer": {"model_input_names": ["input_ids", "token_type_ids"]},
    "LlamaTokenizer": _LEFT, "CodeLlamaTokenizer": _LEFT, "GemmaTokenizer": _LEFT,
    "CohereTokenizer": _LEFT, "XLNetTokenizer": _LEFT,
    # SentencePiece Unigram; `extra_ids` sentinels <extra_id_0>... (see _read_special_tokens)
    "T5Tokenizer": {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "extra_ids": 100},
}
# Tokenizer classes whose transformers implementation rebuilds the pipeline around the file's
# model: the function (in the model's folder) doing the same to a `tokenizers.Tokenizer`.
PIPELINE_REBUILDS = {"T5Tokenizer": "loom.models.t5.tokenization:rebuild_pipeline"}
DEFAULT_CLASS = "PreTrainedTokenizerFast"   # loadable by transformers 4.x and 5.x alike
# When tokenizer_config.json names no class (bert-base-uncased), the model's config.json
# "model_type" decides, as in transformers' AutoTokenizer.
MODEL_TYPE_CLASSES = {
    "bert": "BertTokenizer", "electra": "BertTokenizer", "distilbert": "BertTokenizer",
    "deberta": "DebertaTokenizer", "deberta-v2": "DebertaV2Tokenizer", "fnet": "FNetTokenizer",
    "code_llama": "CodeLlamaTokenizer", "gemma": "GemmaTokenizer", "gemma2": "GemmaTokenizer",
    "cohere": "CohereTokenizer", "xlnet": "XLNetTokenizer", "t5": "T5Tokenizer",
}

# Config keys that describe where files were, or that loom rewrites itself on save.
_NOT_SAVED = {
    "name_or_path", "tokenizer_file", "vocab_file", "special_tokens_map_file", "is_local",
    "local_files_only", "files_loaded", "use_fast", "added_tokens_decoder", "extra_special_tokens",
    "additional_special_tokens", "model_specific_special_tokens", "max_len",
}


def _class_key(name: str | None) -> str:
    if not name:
        return DEFAULT_CLASS
    return name[:-4] if name.endswith("Fast") and name != DEFAULT_CLASS else name


def _token_content(value: Any, where: str) -> str | None:
    """The text of a token given as a str, an AddedToken, or its JSON form."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, AddedToken):
        return value.content
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    raise TokenizerError(f"{where} must be a token string or AddedToken, found {value!r}")


def _as_added_token(token: Any, where: str) -> str | AddedToken:
    """Accept str, tokenizers.AddedToken, its JSON dict, or any object with `.content`."""
    if isinstance(token, (str, AddedToken)):
        return token
    if isinstance(token, dict) and isinstance(token.get("content"), str):
        fields = {k: v for k, v in token.items() if k not in ("id", "__type")}
        return AddedToken(**fields)
    content = getattr(token, "content", None)
    if isinstance(content, str):
        fields = ("single_word", "lstrip", "rstrip", "normalized", "special")
        kw = {f: getattr(token, f) for f in fields if getattr(token, f, None) is not None}
        return AddedToken(content, **kw)
    raise InputError(f"{where} must hold str or AddedToken values, found {token!r}")


# ------------------------------------------------------------------ the BERT vocab.txt builder


def build_wordpiece_backend(vocab_path: str | os.PathLike, config: dict,
                            added_tokens_file: Path | None = None) -> _Backend:
    """The tokenizer that BERT's `vocab.txt` and `tokenizer_config.json` describe:
    BertNormalizer, BertPreTokenizer, WordPiece with "##", `[CLS] $A [SEP] ($B [SEP])`.
    Tokens are added in transformers' order: listed added tokens, then special tokens."""
    try:
        lines = Path(vocab_path).read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise TokenizerError(f"{vocab_path} cannot be read as a UTF-8 vocabulary: {e}") from None
    if lines and lines[-1] == "":
        lines.pop()   # the final newline ends the last token, it does not start a new one
    vocab = {token: index for index, token in enumerate(lines)}
    unk = _token_content(config.get("unk_token"), f"unk_token in {CONFIG_FILE}") or "[UNK]"
    if not vocab:
        raise TokenizerError(f"{vocab_path} holds no tokens")
    backend = _Backend(WordPiece(vocab, unk_token=unk, continuing_subword_prefix="##"))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
        strip_accents=config.get("strip_accents"),
        lowercase=bool(config.get("do_lower_case", True)),
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    _add_listed_tokens(backend, config, added_tokens_file)
    cls = _token_content(config.get("cls_token"), "cls_token") or "[CLS]"
    sep = _token_content(config.get("sep_token"), "sep_token") or "[SEP]"
    named = [_token_content(config.get(n), n) for n in SPECIAL_TOKEN_NAMES]
    present = {t.content for t in backend.get_added_tokens_decoder().values()}
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                for t in dict.fromkeys([*named, cls, sep])
                                if t is not None and t not in present])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))],
    )
    return backend


# ------------------------------------------------------------------ Tokenizer


def _special_property(name: str) -> property:
    def get(self) -> str | None:
        return self._special.get(name)

    def set(self, value) -> None:
        self._special[name] = _token_content(value, name)

    return property(get, set, doc=f"The {name.replace('_', ' ')} (a str), or None.")


def _special_id_property(name: str) -> property:
    def get(self) -> int | None:
        token = self._special.get(name)
        return None if token is None else self.convert_tokens_to_ids(token)

    def set(self, value: int | None) -> None:
        self._special[name] = None if value is None else self.convert_ids_to_tokens(int(value))

    return property(get, set, doc=f"The id of the {name.replace('_', ' ')}, or None.")


class Tokenizer(PushToHubMixin):
    """A pretrained tokenizer over one `tokenizers.Tokenizer` backend."""

    def __init__(self, backend: _Backend, config: dict | None = None, *, name_or_path: str = ""):
        config = dict(config or {})
        self.tokenizer_class = config.get("tokenizer_class") or DEFAULT_CLASS
        defaults = dict(CLASS_DEFAULTS.get(_class_key(self.tokenizer_class), {}))
        # As in transformers, padding/truncation baked into tokenizer.json supply defaults:
        # they beat a class's sides but not the special tokens its __init__ names.
        padding, truncation = backend.padding or {}, backend.truncation or {}
        for key, value in (("truncation_side", truncation.get("direction")),
                           ("padding_side", padding.get("direction")),
                           ("pad_token", padding.get("pad_token"))):
            if value is not None and (key.endswith("_side") or key not in defaults):
                defaults[key] = value
        config = {**defaults, **config}
        self._backend = backend
        self._config = config
        self.name_or_path = str(name_or_path)
        self._warned_too_long = False
        self._read_settings(config)
        self._read_special_tokens(config)
        self._register_special_tokens()
        # The file's own padding/truncation are kept for saving; each call sets its own.
        self._file_truncation = backend.truncation
        self._file_padding = backend.padding
        backend.no_truncation()
        backend.no_padding()

    # -------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        token: str | bool | None = None, subfolder: str | None = None,
                        gguf_file: str | os.PathLike | None = None, force_download: bool = False,
                        **overrides) -> Tokenizer:
        """Load `tokenizer.json` (or BERT's `vocab.txt`) and `tokenizer_config.json` from a
        folder or Hub repo. Keyword `overrides` replace config values (e.g. `pad_token=`).
        With `gguf_file` (or a .gguf path), the tokenizer a GGUF file's metadata describes."""
        where = dict(revision=pin(path_or_repo_id, revision), cache_dir=cache_dir,
                     local_files_only=local_files_only, token=token, subfolder=subfolder,
                     required=False, force_download=force_download)   # every file from one commit
        from ..modeling.gguf import read_gguf, resolve_gguf

        gguf_path = resolve_gguf(path_or_repo_id, gguf_file, **{**where, "required": True})
        if gguf_path is not None:
            backend, config = read_gguf(gguf_path).tokenizer()
            return cls(backend, {**config, **overrides}, name_or_path=str(path_or_repo_id))

        def find(name: str) -> Path | None:
            return resolve(path_or_repo_id, name, **where)

        tokenizer_file = find(TOKENIZER_FILE)
        vocab_file = None if tokenizer_file is not None else find(VOCAB_FILE)
        if tokenizer_file is None and vocab_file is None:
            folder = f"{path_or_repo_id}/{subfolder}" if subfolder else str(path_or_repo_id)
            raise EntryNotFoundError(
                f"no tokenizer in {folder}: looked for {TOKENIZER_FILE} and {VOCAB_FILE}, found"
                f" neither. Save one there with Tokenizer.save_pretrained(), or pass the folder"
                f" of a model that has a tokenizer."
            )
        config_file = find(CONFIG_FILE)
        config = _read_json_file(config_file) if config_file is not None else {}
        if "added_tokens_decoder" not in config:   # older layout: special tokens in their own file
            map_file = find(SPECIAL_TOKENS_MAP_FILE)
            if map_file is not None:
                config.update(_read_json_file(map_file))
        from .chat import read_chat_templates

        local = Path(path_or_repo_id, subfolder or "")
        read_chat_templates(find, local if local.is_dir() else None, config)
        config.update(overrides)
        if not config.get("tokenizer_class"):
            config["tokenizer_class"] = _class_from_model_config(find("config.json"))
        added_tokens_file = find(ADDED_TOKENS_FILE)
        if tokenizer_file is not None:
            backend = _load_backend(tokenizer_file)
            rebuild = PIPELINE_REBUILDS.get(_class_key(config["tokenizer_class"]))
            if rebuild is not None:  # classes that ignore the file's pipeline and build their own
                module, _, name = rebuild.partition(":")
                getattr(importlib.import_module(module), name)(backend, config)
            _add_listed_tokens(backend, config, added_tokens_file)
        else:
            config["tokenizer_class"] = config["tokenizer_class"] or "BertTokenizer"
            defaults = CLASS_DEFAULTS.get(_class_key(config["tokenizer_class"]), {})
            backend = build_wordpiece_backend(vocab_file, {**defaults, **config}, added_tokens_file)
        return cls(backend, config, name_or_path=str(path_or_repo_id))

    def _read_settings(self, config: dict) -> None:
        limit = config.get("model_max_length", config.get("max_len"))
        if limit is None:
            limit = VERY_LARGE_INTEGER
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0:
            raise TokenizerError(f"model_max_length in {CONFIG_FILE} must be a non-negative int,"
                                 f" found {limit!r}")
        self.model_max_length = int(limit)
        for key in ("padding_side", "truncation_side"):
            side = config.get(key, "right")
            if side not in SIDES:
                raise TokenizerError(f"{key} in {CONFIG_FILE} must be 'right' or 'left',"
                                     f" found {side!r}")
            setattr(self, key, side)
        names = config.get("model_input_names") or ["input_ids", "attention_mask"]
        self.model_input_names = list(names)
        self.clean_up_tokenization_spaces = bool(config.get("clean_up_tokenization_spaces", False))
        self._backend.encode_special_tokens = bool(config.get("split_special_tokens", False))

    def _read_special_tokens(self, config: dict) -> None:
        self._special: dict[str, str | None] = {
            name: _token_content(config.get(name), f"{name} in {CONFIG_FILE}")
            for name in SPECIAL_TOKEN_NAMES
        }
        extra = config.get("extra_special_tokens") or config.get("additional_special_tokens") or []
        named_extra = {}
        if isinstance(extra, dict):   # transformers 5: {"image_token": "<image>", ...}
            named_extra, extra = extra, []
        if not isinstance(extra, (list, tuple)):
            raise TokenizerError(f"additional_special_tokens in {CONFIG_FILE} must be a list,"
                                 f" found {extra!r}")
        for key, value in config.items():   # model-specific named tokens, e.g. "image_token"
            is_token = isinstance(value, str) or (isinstance(value, dict) and "content" in value)
            if key.endswith("_token") and key not in self._special and is_token:
                named_extra.setdefault(key, value)
        for key, value in named_extra.items():
            self._special[key] = _token_content(value, f"{key} in {CONFIG_FILE}")
        where = f"additional_special_tokens in {CONFIG_FILE}"
        self._extra = [_token_content(t, where) for t in extra]
        sentinels = config.get("extra_ids") or 0   # T5: <extra_id_N> unless the list names them
        if not isinstance(sentinels, int) or sentinels < 0:
            raise TokenizerError(f"extra_ids in {CONFIG_FILE} must be a non-negative int, found {sentinels!r}")
        if sentinels and not any(t.startswith("<extra_id_") for t in self._extra):
            self._extra += [f"<extra_id_{i}>" for i in range(sentinels)]

    def _register_special_tokens(self) -> None:
        """Make every special token an unsplittable special token of the backend, as
        transformers does (a token already in the vocabulary keeps its id)."""
        present = {t.content for t in self._backend.get_added_tokens_decoder().values()}
        missing = [t for t in dict.fromkeys(self.all_special_tokens) if t not in present]
        if missing:
            self._backend.add_special_tokens(
                [AddedToken(t, special=True, normalized=False) for t in missing])

    # -------------------------------------------------------------- special tokens

    bos_token = _special_property("bos_token")
    eos_token = _special_property("eos_token")
    unk_token = _special_property("unk_token")
    sep_token = _special_property("sep_token")
    pad_token = _special_property("pad_token")
    cls_token = _special_property("cls_token")
    mask_token = _special_property("mask_token")
    bos_token_id = _special_id_property("bos_token")
    eos_token_id = _special_id_property("eos_token")
    unk_token_id = _special_id_property("unk_token")
    sep_token_id = _special_id_property("sep_token")
    pad_token_id = _special_id_property("pad_token")
    cls_token_id = _special_id_property("cls_token")
    mask_token_id = _special_id_property("mask_token")

    def __getattr__(self, name: str):
        # Model-specific named special tokens from the config ("image_token", "image_token_id").
        special = self.__dict__.get("_special", {})
        if name in special:
            return special[name]
        if name.endswith("_id") and name[:-3] in special:
            token = special[name[:-3]]
            return None if token is None else self.convert_tokens_to_ids(token)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def additional_special_tokens(self) -> list[str]:
        return list(self._extra)

    @additional_special_tokens.setter
    def additional_special_tokens(self, tokens) -> None:
        self._extra = [_token_content(t, "additional_special_tokens") for t in tokens or []]

    extra_special_tokens = additional_special_tokens   # the transformers 5 name

    @property
    def additional_special_tokens_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self._extra)

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {name: token for name, token in self._special.items() if token is not None}

    @property
    def all_special_tokens(self) -> list[str]:
        named = [t for t in self._special.values() if t is not None]
        return list(dict.fromkeys([*named, *self._extra]))

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    # -------------------------------------------------------------- vocabulary

    @property
    def backend_tokenizer(self) -> _Backend:
        return self._backend

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary, without added tokens."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return self._backend.get_added_tokens_decoder()

    def get_added_vocab(self) -> dict[str, int]:
        return {t.content: i for i, t in sorted(self.added_tokens_decoder.items())}

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._backend.num_special_tokens_to_add(pair)

    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | list[int] | None:
        if isinstance(tokens, str):
            index = self._backend.token_to_id(tokens)
            if index is None and self._special.get("unk_token") is not None:
                index = self._backend.token_to_id(self._special["unk_token"])
            return index
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | list[int], skip_special_tokens: bool = False):
        if isinstance(ids, (int, np.integer)):
            return self._backend.id_to_token(int(ids))
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._backend.id_to_token(int(i)) for i in to_list(ids) if int(i) not in skip]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        decoder = self._backend.decoder
        return decoder.decode(list(tokens)) if decoder is not None else " ".join(tokens)

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens (str or AddedToken) that are matched whole; returns how many are new."""
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        tokens = [_as_added_token(t, "new_tokens") for t in new_tokens]
        if special_tokens:
            return self._backend.add_special_tokens(tokens)
        return self._backend.add_tokens(tokens)

    def add_special_tokens(self, special_tokens_dict: dict,
                           replace_additional_special_tokens: bool = True) -> int:
        """Set named special tokens (`pad_token`, ...) and `additional_special_tokens`,
        adding those not yet in the vocabulary; returns how many are new."""
        allowed = {*SPECIAL_TOKEN_NAMES, "additional_special_tokens", "extra_special_tokens"}
        to_add = []
        for key, value in dict(special_tokens_dict or {}).items():
            if key not in allowed:
                raise InputError(f"special_tokens_dict key {key!r} is not one of {sorted(allowed)}")
            values = [value] if key in SPECIAL_TOKEN_NAMES else value
            if not isinstance(values, (list, tuple)):
                raise InputError(f"special_tokens_dict[{key!r}] must be a list, found {value!r}")
            tokens = [_as_added_token(v, f"special_tokens_dict[{key!r}]") for v in values]
            tokens = [AddedToken(t, special=True, normalized=False) if isinstance(t, str) else t
                      for t in tokens]
            contents = [_token_content(t, key) for t in tokens]
            if key in SPECIAL_TOKEN_NAMES:
                self._special[key] = contents[0]
            elif replace_additional_special_tokens and contents:
                self._extra = contents
            else:
                self._extra += [c for c in contents if c not in self._extra]
            to_add += tokens
        return self._backend.add_special_tokens(to_add) if to_add else 0

    # -------------------------------------------------------------- encoding

    def __call__(self, text, text_pair=None, *, add_special_tokens: bool = True,
                 padding: bool | str = False, truncation: bool | str | None = None,
                 max_length: int | None = None, stride: int = 0,
                 pad_to_multiple_of: int | None = None, padding_side: str | None = None,
                 return_tensors: str | None = None, return_token_type_ids: bool | None = None,
                 return_attention_mask: bool | None = None, return_offsets_mapping: bool = False,
                 return_special_tokens_mask: bool = False, return_overflowing_tokens: bool = False,
                 return_length: bool = False, is_split_into_words: bool = False) -> BatchEncoding:
        """Tokenize one text (or pair), or a batch of texts (or pairs)."""
        if return_tensors is not None:
            check_tensor_type(return_tensors)
        if padding_side is not None and padding_side not in SIDES:
            raise InputError(f"padding_side must be 'right' or 'left', found {padding_side!r}")
        batch, is_batched = as_batch(text, text_pair, is_split_into_words)
        pad, trunc, max_length = self._strategies(padding, truncation, max_length,
                                                  pad_to_multiple_of)
        check_int("stride", stride, minimum=0)
        try:
            self._configure_backend(pad, trunc, max_length, stride, pad_to_multiple_of,
                                    padding_side)
            encodings = self._backend.encode_batch(
                batch, add_special_tokens=add_special_tokens, is_pretokenized=is_split_into_words)
        except Exception as e:   # the Rust side reports bad truncation settings as plain errors
            raise InputError(
                f"tokenizing failed with truncation={trunc!r}, max_length={max_length},"
                f" stride={stride}: {e}") from None
        asked = {"token_type_ids": return_token_type_ids, "attention_mask": return_attention_mask,
                 "special_tokens_mask": return_special_tokens_mask,
                 "offset_mapping": return_offsets_mapping, "length": return_length}
        keys = [k for k, on in asked.items() if (k in self.model_input_names if on is None else on)]
        data, rows = collect(encodings, keys, return_overflowing_tokens)
        if max_length is None:
            self._warn_if_too_long(data.get("input_ids", []))
        if not is_batched and return_tensors is None and not return_overflowing_tokens:
            # One text, no tensors: drop the batch level of nested outputs ("length" stays [n]).
            data = {k: v[0] if v and isinstance(v[0], list) else v for k, v in data.items()}
        return BatchEncoding(data, rows, tensor_type=return_tensors)

    def _strategies(self, padding, truncation, max_length, pad_to_multiple_of):
        """transformers' rules for turning padding/truncation/max_length into strategies."""
        if max_length is not None:
            check_int("max_length", max_length, minimum=0)
        if pad_to_multiple_of is not None:
            check_int("pad_to_multiple_of", pad_to_multiple_of, minimum=1)
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"   # a bare max_length truncates, as in transformers
        pad = strategy("padding", padding, "longest", "do_not_pad", PADDING_STRATEGIES)
        trunc = strategy("truncation", truncation, "longest_first", "do_not_truncate",
                          TRUNCATION_STRATEGIES)
        no_limit = self.model_max_length > LARGE_INTEGER
        if max_length is None:
            if pad == "max_length":
                if no_limit:
                    raise InputError(
                        "padding='max_length' needs max_length: this tokenizer has no"
                        " model_max_length to pad to; pass max_length=N")
                max_length = self.model_max_length
            if trunc != "do_not_truncate":
                if no_limit:
                    logger.info("truncation without max_length or model_max_length: not truncating")
                    trunc = "do_not_truncate"
                else:
                    max_length = self.model_max_length
        if pad != "do_not_pad" and (self.pad_token is None or self.pad_token_id is None):
            raise InputError(
                f"padding={padding!r} needs a pad token and this tokenizer has none; set"
                " tokenizer.pad_token = tokenizer.eos_token or add one with"
                " add_special_tokens({'pad_token': '[PAD]'})")
        if (trunc != "do_not_truncate" and pad != "do_not_pad" and pad_to_multiple_of
                and max_length is not None and max_length % pad_to_multiple_of):
            raise InputError(f"max_length={max_length} is not a multiple of pad_to_multiple_of="
                             f"{pad_to_multiple_of} while both truncation and padding are on")
        return pad, trunc, max_length

    def _configure_backend(self, pad, trunc, max_length, stride, pad_to_multiple_of, padding_side):
        backend = self._backend
        if trunc == "do_not_truncate":
            if backend.truncation is not None:
                backend.no_truncation()
        else:
            target = {"max_length": max_length, "stride": stride, "strategy": trunc,
                      "direction": self.truncation_side}
            current = backend.truncation
            if current is None or {k: current.get(k) for k in target} != target:
                backend.enable_truncation(**target)
        if pad == "do_not_pad":
            if backend.padding is not None:
                backend.no_padding()
        else:
            target = {"length": max_length if pad == "max_length" else None,
                      "direction": padding_side or self.padding_side, "pad_id": self.pad_token_id,
                      "pad_token": self.pad_token, "pad_type_id": 0,
                      "pad_to_multiple_of": pad_to_multiple_of}
            if backend.padding != target:
                backend.enable_padding(**target)

    def _warn_if_too_long(self, rows: list[list[int]]) -> None:
        longest = max((len(r) for r in rows), default=0)
        if longest > self.model_max_length and not self._warned_too_long:
            self._warned_too_long = True
            logger.warning("a sequence of %d tokens is longer than model_max_length=%d: the model"
                           " cannot take it whole; pass truncation=True", longest,
                           self.model_max_length)

    def encode(self, text, text_pair=None, *, add_special_tokens: bool = True,
               padding: bool | str = False, truncation: bool | str | None = None,
               max_length: int | None = None, stride: int = 0, return_tensors: str | None = None,
               is_split_into_words: bool = False):
        """The input ids of one text (or pair)."""
        encoding = self(text, text_pair, add_special_tokens=add_special_tokens, padding=padding,
                        truncation=truncation, max_length=max_length, stride=stride,
                        return_tensors=return_tensors, is_split_into_words=is_split_into_words)
        return encoding["input_ids"]

    def tokenize(self, text: str, pair: str | None = None,
                 add_special_tokens: bool = False) -> list[str]:
        return self(text, pair, add_special_tokens=add_special_tokens).tokens()

    # -------------------------------------------------------------- chat templates

    @property
    def chat_template(self) -> str | dict[str, str] | None:
        """The Jinja chat template (or {name: template}); saved in tokenizer_config.json."""
        return self._config.get("chat_template")

    @chat_template.setter
    def chat_template(self, value) -> None:
        from .chat import normalize_template

        self._config["chat_template"] = normalize_template(value)

    def apply_chat_template(self, conversation, *, tools=None, documents=None,
                            chat_template: str | None = None, add_generation_prompt: bool = False,
                            continue_final_message: bool | str = False, tokenize: bool = True,
                            padding: bool | str = False, truncation: bool = False,
                            max_length: int | None = None, return_tensors: str | None = None,
                            return_dict: bool = True, tokenizer_kwargs: dict | None = None,
                            **template_variables):
        """Render messages ([{"role": "user", "content": "..."}, ...], or a batch of such lists)
        with the chat template; tokenized (no extra special tokens) unless `tokenize=False`.
        Returns the text, a BatchEncoding (`return_dict=True`, the default) or the ids."""
        from .chat import apply_chat_template

        return apply_chat_template(
            self, conversation, tools=tools, documents=documents, chat_template=chat_template,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=continue_final_message, tokenize=tokenize, padding=padding,
            truncation=truncation, max_length=max_length, return_tensors=return_tensors,
            return_dict=return_dict, tokenizer_kwargs=tokenizer_kwargs, **template_variables)

    # -------------------------------------------------------------- decoding

    def decode(self, token_ids, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool | None = None):
        """Ids to text; a batch (list of lists, 2-D array) gives a list of texts."""
        ids = to_list(token_ids)
        if isinstance(ids, int):
            ids = [ids]
        if ids and isinstance(ids[0], list):
            return self.batch_decode(ids, skip_special_tokens, clean_up_tokenization_spaces)
        check_ids(ids)
        text = self._backend.decode(ids, skip_special_tokens=skip_special_tokens)
        return self._clean_up(self._end_words(text), clean_up_tokenization_spaces)

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        rows = to_list(sequences)
        if isinstance(rows, int) or (rows and not isinstance(rows[0], list)):
            rows = [rows if isinstance(rows, list) else [rows]]
        for row in rows:
            check_ids(row)
        texts = self._backend.decode_batch(rows, skip_special_tokens=skip_special_tokens)
        return [self._clean_up(self._end_words(t), clean_up_tokenization_spaces) for t in texts]

    def _end_words(self, text: str) -> str:
        """BPE vocabularies that mark word ends (CLIP's `</w>`) decode them as spaces, as
        transformers does (its byte-level decoder leaves the marker in)."""
        suffix = getattr(self._backend.model, "end_of_word_suffix", None)
        return text.replace(suffix, " ").strip() if suffix else text

    def _clean_up(self, text: str, flag: bool | None) -> str:
        if not (self.clean_up_tokenization_spaces if flag is None else flag):
            return text
        if type(self._backend.model).__name__ == "BPE":
            # transformers skips it for BPE: it would delete real spaces before punctuation.
            return text
        for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                              (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"),
                              (" 're", "'re")):
            text = text.replace(before, after)
        return text

    # -------------------------------------------------------------- saving

    def save_pretrained(self, save_directory: str | os.PathLike) -> list[str]:
        """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json atomically
        (files of a model already in the folder stay); returns the file names written."""
        backend = self._backend   # written with the padding/truncation its file had
        if self._file_truncation is not None:
            backend.enable_truncation(**self._file_truncation)
        if self._file_padding is not None:
            backend.enable_padding(**self._file_padding)
        try:
            text = backend.to_str(pretty=True) + "\n"
        finally:
            backend.no_truncation()
            backend.no_padding()
        config = self._config_to_save(json.loads(text).get("normalizer"))
        special_map = dict(self.special_tokens_map)
        if self._extra:
            special_map["additional_special_tokens"] = list(self._extra)
        with atomic_folder(save_directory) as tmp:
            (tmp / TOKENIZER_FILE).write_text(text, encoding="utf-8")
            write_json(tmp / CONFIG_FILE, config)
            write_json(tmp / SPECIAL_TOKENS_MAP_FILE, special_map)
        return [TOKENIZER_FILE, CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE]

    def _config_to_save(self, normalizer: dict | None) -> dict:
        config = {k: v for k, v in self._config.items()
                  if k not in _NOT_SAVED and k not in self._special}
        config.update(self.special_tokens_map)
        if self._extra:
            config["additional_special_tokens"] = list(self._extra)
        config.update(
            tokenizer_class=_class_key(self.tokenizer_class),
            model_max_length=self.model_max_length,
            padding_side=self.padding_side,
            truncation_side=self.truncation_side,
            model_input_names=list(self.model_input_names),
            clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
        )
        if normalizer and normalizer.get("type") == "BertNormalizer":
            # transformers' BertTokenizer rebuilds its normalizer from these keys, not the file.
            config.update(do_lower_case=normalizer.get("lowercase", True),
                          strip_accents=normalizer.get("strip_accents"),
                          tokenize_chinese_chars=normalizer.get("handle_chinese_chars", True))
        return config

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name_or_path={self.name_or_path!r},"
                f" class={self.tokenizer_class}, vocab_size={self.vocab_size}, len={len(self)},"
                f" model_max_length={self.model_max_length},"
                f" special_tokens={self.special_tokens_map})")


PreTrainedTokenizerFast = Tokenizer


# ------------------------------------------------------------------ helpers


def _read_json_file(path: Path) -> dict:
    try:
        return read_json(path, what="tokenizer file")
    except ConfigError as e:
        raise TokenizerError(str(e)) from None


def _class_from_model_config(path: Path | None) -> str | None:
    """The tokenizer class a model's config.json implies, or None."""
    if path is None:
        return None
    try:
        model_config = read_json(path, what="model config")
    except ConfigError:
        return None   # a broken model config is the model loader's to report
    declared = model_config.get("tokenizer_class")
    return declared or MODEL_TYPE_CLASSES.get(model_config.get("model_type"))


def _load_backend(path: Path) -> _Backend:
    try:
        return _Backend.from_file(str(path))
    except Exception as e:   # tokenizers raises a bare Exception on malformed files
        raise TokenizerError(
            f"{path} is not a valid tokenizers file ({e}); re-save it or delete it to fall"
            f" back to {VOCAB_FILE}") from None


def _add_listed_tokens(backend: _Backend, config: dict, added_tokens_file: Path | None) -> None:
    """Add tokens listed in `added_tokens_decoder` or `added_tokens.json` that the backend
    lacks (the vocab.txt path, or configs written by slow tokenizers), in id order."""
    listed: dict[int, Any] = {}
    for index, spec in (config.get("added_tokens_decoder") or {}).items():
        listed[int(index)] = spec
    if added_tokens_file is not None:
        for content, index in _read_json_file(added_tokens_file).items():
            listed.setdefault(int(index), content)
    for index in sorted(listed):
        token = _as_added_token(listed[index], f"added token {index}")
        content = _token_content(token, f"added token {index}")
        if backend.token_to_id(content) is not None:
            continue
        if isinstance(token, str):
            special = content in {_token_content(config.get(n), n) for n in SPECIAL_TOKEN_NAMES}
            token = AddedToken(content, special=special, normalized=not special)
        if token.special:
            backend.add_special_tokens([token])
        else:
            backend.add_tokens([token])
        if backend.token_to_id(content) != index:
            logger.warning("added token %r got id %d, not the id %d its file lists",
                           content, backend.token_to_id(content), index)


__all__ = [
    "BatchEncoding",
    "CharSpan",
    "PreTrainedTokenizerFast",
    "TokenSpan",
    "Tokenizer",
    "build_wordpiece_backend",
]
