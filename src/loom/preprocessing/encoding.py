"""`BatchEncoding`: what a tokenizer call returns (a dict of ids, plus alignment helpers)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import InputError

TENSOR_TYPES = ("np", "pt")


class CharSpan(NamedTuple):
    start: int
    end: int


class TokenSpan(NamedTuple):
    start: int
    end: int




class BatchEncoding(dict):
    """The output of a `Tokenizer` call: a dict of lists or arrays, plus the backend
    `tokenizers.Encoding` of every row for word/char/token alignment."""

    def __init__(self, data=None, encodings=None, tensor_type: str | None = None):
        super().__init__(data or {})
        self._encodings = encodings
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key or attribute {name!r}") from None

    def __getitem__(self, key):
        if isinstance(key, str):
            return super().__getitem__(key)
        if isinstance(key, int) and self._encodings is not None:
            return self._encodings[key]
        if isinstance(key, slice):
            return {k: v[key] for k, v in self.items()}
        raise KeyError(f"BatchEncoding keys are str, int (an encoding) or slice; got {key!r}")

    @property
    def encodings(self):
        return self._encodings

    @property
    def n_sequences(self) -> int | None:
        return self._encodings[0].n_sequences if self._encodings else None

    def _encoding(self, batch_index: int):
        if self._encodings is None:
            raise InputError("this BatchEncoding holds no encodings (not made by a Tokenizer call)")
        return self._encodings[batch_index]

    @staticmethod
    def _split(first: int, second: int | None) -> tuple[int, int]:
        return (0, first) if second is None else (first, second)

    def tokens(self, batch_index: int = 0) -> list[str]:
        return self._encoding(batch_index).tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._encoding(batch_index).word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._encoding(batch_index).sequence_ids

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None):
        b, t = self._split(batch_or_token_index, token_index)
        return self._encoding(b).token_to_word(t)

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None):
        b, t = self._split(batch_or_token_index, token_index)
        return self._encoding(b).token_to_sequence(t)

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None):
        b, t = self._split(batch_or_token_index, token_index)
        span = self._encoding(b).token_to_chars(t)
        return CharSpan(*span) if span is not None else None

    def char_to_token(self, batch_or_char_index: int, char_index: int | None = None,
                      sequence_index: int = 0) -> int | None:
        b, c = self._split(batch_or_char_index, char_index)
        return self._encoding(b).char_to_token(c, sequence_index)

    def word_to_tokens(self, batch_or_word_index: int, word_index: int | None = None,
                       sequence_index: int = 0):
        b, w = self._split(batch_or_word_index, word_index)
        span = self._encoding(b).word_to_tokens(w, sequence_index)
        return TokenSpan(*span) if span is not None else None

    def convert_to_tensors(self, tensor_type: str) -> BatchEncoding:
        """Turn every value into an int64 array ("np") or tensor ("pt"), in place."""
        check_tensor_type(tensor_type)
        for key, value in self.items():
            if isinstance(value, (list, tuple)):
                lengths = {len(v) for v in value if isinstance(v, (list, tuple))}
                if len(lengths) > 1:
                    raise InputError(
                        f"cannot make {tensor_type!r} tensors of {key!r}: rows have lengths"
                        f" {sorted(lengths)}; pass padding=True (and truncation=True if needed)"
                    )
                array = np.asarray(value, dtype=np.int64)
                if tensor_type == "pt":
                    import torch

                    array = torch.from_numpy(array)
                self[key] = array
        return self

    def to(self, device, *, non_blocking: bool = False) -> BatchEncoding:
        """Move every torch tensor to `device` (needs `return_tensors="pt"`)."""
        for key, value in self.items():
            if isinstance(value, np.ndarray) or not callable(getattr(value, "to", None)):
                raise InputError(
                    f"BatchEncoding.to() moves torch tensors, but {key!r} is a"
                    f" {type(value).__name__}; call the tokenizer with return_tensors='pt'"
                )
            self[key] = value.to(device=device, non_blocking=non_blocking)
        return self


def check_tensor_type(value) -> None:
    if value not in TENSOR_TYPES:
        raise InputError(f"return_tensors must be one of {TENSOR_TYPES} or None, found {value!r}")



__all__ = ["BatchEncoding", "CharSpan", "TokenSpan", "TENSOR_TYPES", "check_tensor_type"]
