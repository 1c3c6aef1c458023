"""Checking and shaping what a tokenizer call is given, and collecting what the backend
returns: argument checks, strategies, batching of texts and pairs, output columns."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def check_int(name: str, value, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an int >= {minimum}, found {value!r}")


def strategy(name: str, value, on: str, off: str, allowed: tuple[str, ...]) -> str:
    if isinstance(value, bool) or value is None:
        return on if value else off
    value = getattr(value, "value", value)   # transformers' enums are accepted too
    if value not in allowed:
        raise InputError(f"{name} must be True, False or one of {allowed}, found {value!r}")
    return value


def as_batch(text, text_pair, split: bool) -> tuple[list, bool]:
    """The inputs as a list of backend items (a text, a word list, or a pair of them), and
    whether the caller passed a batch; names the first argument that does not fit."""
    kind = "a list of words" if split else "a str"

    def one(v) -> bool:
        if split:
            return isinstance(v, (list, tuple)) and all(isinstance(w, str) for w in v)
        return isinstance(v, str)

    def item(v, name: str):
        if one(v):   # a pair of word lists is never itself a list of words: no ambiguity
            return list(v) if split else v
        if isinstance(v, (list, tuple)) and len(v) == 2 and one(v[0]) and one(v[1]):
            return (list(v[0]), list(v[1])) if split else (v[0], v[1])
        raise InputError(f"{name} must be {kind} (or a pair of them), found"
                         f" {type(v).__name__}: {v!r:.60}")

    first = text[0] if isinstance(text, (list, tuple)) and text else None
    batched = isinstance(text, (list, tuple)) and (not split or isinstance(first, (list, tuple)))
    if not batched:
        for name, value in (("text", text), ("text_pair", text_pair)):
            if (value is not None or name == "text") and not one(value):
                raise InputError(f"{name} must be {kind} or a batch (list) of them, found"
                                 f" {type(value).__name__}")
        # As in transformers, an empty text_pair counts as no pair for a single input.
        return [item((text, text_pair) if text_pair else text, "text")], False
    if text_pair is None:
        return [item(t, f"text[{i}]") for i, t in enumerate(text)], True
    if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
        found = (f"length {len(text_pair)}" if isinstance(text_pair, (list, tuple))
                 else type(text_pair).__name__)
        raise InputError(f"text_pair must be a list as long as text ({len(text)}), found {found}")
    return [item((a, b), f"text[{i}] with text_pair[{i}]")
            for i, (a, b) in enumerate(zip(text, text_pair))], True


# Optional outputs of a call, read from one backend `tokenizers.Encoding`, in transformers' order.
_OUTPUTS = {
    "token_type_ids": lambda e: e.type_ids,
    "attention_mask": lambda e: e.attention_mask,
    "special_tokens_mask": lambda e: e.special_tokens_mask,
    "offset_mapping": lambda e: e.offsets,
    "length": lambda e: len(e.ids),
}


def collect(encodings, keys: list[str], overflow: bool) -> tuple[dict, list]:
    """Backend encodings to columns; with `overflow`, every window is its own row."""
    data: dict[str, list] = {"input_ids": [], **{key: [] for key in keys}}
    rows, mapping = [], []
    for sample, encoding in enumerate(encodings):
        for window in [encoding, *encoding.overflowing] if overflow else [encoding]:
            rows.append(window)
            mapping.append(sample)
            data["input_ids"].append(window.ids)
            for key in keys:
                data[key].append(_OUTPUTS[key](window))
    if overflow:
        data["overflow_to_sample_mapping"] = mapping
    return data, rows


def to_list(ids):
    """Arrays, tensors and tuples to plain (nested) lists of int."""
    if hasattr(ids, "tolist"):
        return ids.tolist()
    if isinstance(ids, (list, tuple)):
        return [to_list(i) if isinstance(i, (list, tuple)) or hasattr(i, "tolist") else i
                for i in ids]
    return ids


def check_ids(ids: list) -> None:
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int) or i < 0:
            raise InputError(f"token_ids must be non-negative ints, found {i!r}")
