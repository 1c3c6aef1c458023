"""Collators: turn a list of dataset items (dicts) into one batch of padded tensors.

Padding needs a pad id and a side, read from the tokenizer (`pad_token_id`,
`padding_side`); any object with those attributes works, loom's tokenizer or another.
`labels` are padded with -100, the index every loom loss ignores. Random choices (the
masking of `DataCollatorForLanguageModeling`) use torch's global generator, which the
Trainer seeds per batch from (seed, epoch, batch), so they are the same after a resume and
in worker processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InputError

IGNORE_INDEX = -100
# Pad values of the keys tokenizers return; other sequence keys pad with 0.
_PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0, "special_tokens_mask": 1,
               "labels": IGNORE_INDEX, "label_ids": IGNORE_INDEX, "position_ids": 0}


def _as_list(value) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _is_sequence(value) -> bool:
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.ndim >= 1
    return isinstance(value, (list, tuple))


def _check_features(features) -> list[Mapping]:
    if not isinstance(features, Sequence) or not features:
        raise InputError(f"a collator needs a non-empty list of items, found {type(features).__name__}")
    for i, f in enumerate(features):
        if not isinstance(f, Mapping):
            raise InputError(f"batch item {i} must be a dict of fields, found {type(f).__name__}")
    return list(features)


def _rename_label(feature: Mapping) -> dict:
    """`label` / `label_ids` columns become `labels`, the name every loom head takes."""
    f = dict(feature)
    for alias in ("label", "label_ids"):
        if alias in f and "labels" not in f:
            f["labels"] = f.pop(alias)
    return f


def _target_length(lengths: list[int], max_length: int | None, pad_to_multiple_of: int | None,
                   padding) -> int:
    n = max(lengths)  # padding="longest"; max_length only matters for "max_length", as in HF
    if padding == "max_length":
        if max_length is None:
            raise InputError("padding='max_length' needs max_length=")
        n = max_length
    if pad_to_multiple_of:
        n = -(-n // pad_to_multiple_of) * pad_to_multiple_of
    return n


def pad_sequences(rows: list, value, length: int, side: str = "right", dtype=None) -> torch.Tensor:
    """(N, *) ragged rows -> (N, length, ...) tensor, filled with `value` on `side`."""
    rows = [torch.as_tensor(_as_list(r), dtype=dtype) for r in rows]
    longest = max(r.shape[0] for r in rows)
    if longest > length:
        raise InputError(f"a sequence of {longest} items is longer than the padded length {length}; "
                         "truncate it when tokenizing (truncation=True, max_length=...)")
    out = rows[0].new_full((len(rows), length, *rows[0].shape[1:]), value)
    for i, r in enumerate(rows):
        if side == "left":
            out[i, length - r.shape[0]:] = r
        else:
            out[i, :r.shape[0]] = r
    return out


def _stack(key: str, values: list) -> torch.Tensor:
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(values)
    try:
        t = torch.as_tensor(np.asarray([_as_list(v) for v in values]))
    except (ValueError, TypeError) as e:
        raise InputError(f"field {key!r} cannot be made into one tensor: {e}") from None
    if key == "labels" and t.dtype == torch.int32:
        t = t.long()
    if t.dtype == torch.float64:
        t = t.float()
    return t


def default_data_collator(features: list[Mapping]) -> dict[str, torch.Tensor]:
    """Stack equal-shaped fields; `label`/`label_ids` become `labels`; strings are dropped."""
    features = [_rename_label(f) for f in _check_features(features)]
    batch = {}
    for key in features[0]:
        values = [f.get(key) for f in features]
        if any(v is None for v in values):
            raise InputError(f"field {key!r} is missing or None in some items of the batch")
        if isinstance(values[0], (str, bytes)):
            continue
        batch[key] = _stack(key, values)
    if "labels" in batch and not batch["labels"].is_floating_point():
        batch["labels"] = batch["labels"].long()
    return batch


class _Padder:
    """Pads every sequence field of a batch to one length, each with its own pad value."""

    def __init__(self, tokenizer=None, padding: bool | str = True, max_length: int | None = None,
                 pad_to_multiple_of: int | None = None, pad_token_id: int | None = None,
                 padding_side: str | None = None):
        if padding not in (True, "longest", "max_length"):
            raise InputError(f"padding must be True, 'longest' or 'max_length', found {padding!r}")
        pid = pad_token_id if pad_token_id is not None else getattr(tokenizer, "pad_token_id", None)
        if pid is None:
            raise InputError("padding needs a pad token id: the tokenizer has no pad_token_id; set "
                             "tokenizer.pad_token or pass pad_token_id=")
        self.tokenizer = tokenizer
        self.pad_token_id = int(pid)
        self.padding = "longest" if padding is True else padding
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.padding_side = padding_side or getattr(tokenizer, "padding_side", None) or "right"

    def pad(self, features: list[dict], label_value=IGNORE_INDEX, keys=None) -> dict[str, torch.Tensor]:
        batch = {}
        seq_keys = [k for k in features[0] if _is_sequence(features[0][k])]
        lengths = [len(_as_list(f[k])) for f in features for k in seq_keys if k != "labels"]
        length = _target_length(lengths or [0], self.max_length, self.pad_to_multiple_of, self.padding)
        for key in features[0]:
            values = [f.get(key) for f in features]
            if any(v is None for v in values):
                raise InputError(f"field {key!r} is missing or None in some items of the batch")
            if isinstance(values[0], (str, bytes)):
                continue
            if key in seq_keys and (keys is None or key in keys):
                value = label_value if key == "labels" else _PAD_VALUES.get(
                    key, self.pad_token_id if key.endswith("input_ids") else 0)
                n = length if key != "labels" else max(length, max(len(_as_list(v)) for v in values))
                batch[key] = pad_sequences(values, value, n, self.padding_side)
            else:
                batch[key] = _stack(key, values)
        if "input_ids" in seq_keys and "attention_mask" not in features[0]:
            # Items tokenized without a mask still need one, or the model attends to padding.
            batch["attention_mask"] = pad_sequences([[1] * len(_as_list(f["input_ids"])) for f in features],
                                                    0, batch["input_ids"].shape[1], self.padding_side)
        return batch


class DataCollatorWithPadding(_Padder):
    """Pad `input_ids`, `attention_mask`, `token_type_ids` (...) to the longest item (or
    `max_length`, rounded up to `pad_to_multiple_of`); scalar `labels` are stacked."""

    def __init__(self, tokenizer=None, padding: bool | str = True, max_length: int | None = None,
                 pad_to_multiple_of: int | None = None, return_tensors: str = "pt", *,
                 pad_token_id: int | None = None):
        if return_tensors != "pt":
            raise InputError(f"collators return torch tensors: return_tensors must be 'pt', found {return_tensors!r}")
        super().__init__(tokenizer, padding, max_length, pad_to_multiple_of, pad_token_id)

    def __call__(self, features: list[Mapping]) -> dict[str, torch.Tensor]:
        features = [_rename_label(f) for f in _check_features(features)]
        keys = [k for k in features[0] if k != "labels"]
        batch = self.pad(features, keys=keys)
        if "labels" in batch and not batch["labels"].is_floating_point():
            batch["labels"] = batch["labels"].long()
        return batch


class DataCollatorForTokenClassification(_Padder):
    """Pad the inputs, and pad the per-token `labels` with -100 to the same length."""

    def __init__(self, tokenizer=None, padding: bool | str = True, max_length: int | None = None,
                 pad_to_multiple_of: int | None = None, label_pad_token_id: int = IGNORE_INDEX,
                 return_tensors: str = "pt", *, pad_token_id: int | None = None):
        super().__init__(tokenizer, padding, max_length, pad_to_multiple_of, pad_token_id)
        self.label_pad_token_id = label_pad_token_id

    def __call__(self, features: list[Mapping]) -> dict[str, torch.Tensor]:
        features = [_rename_label(f) for f in _check_features(features)]
        batch = self.pad(features, label_value=self.label_pad_token_id)
        if "labels" in batch:
            T = batch["input_ids"].shape[1] if "input_ids" in batch else batch["labels"].shape[1]
            if batch["labels"].shape[1] != T:
                raise InputError(f"token labels must have one label per token: labels length "
                                 f"{batch['labels'].shape[1]} != input length {T}")
            batch["labels"] = batch["labels"].long()
        return batch


class DataCollatorForSeq2Seq(_Padder):
    """Pad the encoder inputs, pad `labels` (the target ids) with -100 to their own longest
    length, and build `decoder_input_ids` when the model has
    `prepare_decoder_input_ids_from_labels`."""

    def __init__(self, tokenizer=None, model=None, padding: bool | str = True,
                 max_length: int | None = None, pad_to_multiple_of: int | None = None,
                 label_pad_token_id: int = IGNORE_INDEX, return_tensors: str = "pt", *,
                 pad_token_id: int | None = None):
        super().__init__(tokenizer, padding, max_length, pad_to_multiple_of, pad_token_id)
        self.model = model
        self.label_pad_token_id = label_pad_token_id

    def __call__(self, features: list[Mapping]) -> dict[str, torch.Tensor]:
        features = [_rename_label(f) for f in _check_features(features)]
        labels = [f.pop("labels") for f in features] if "labels" in features[0] else None
        batch = self.pad(features)
        if labels is not None:
            n = max(len(_as_list(row)) for row in labels)
            if self.pad_to_multiple_of:
                n = -(-n // self.pad_to_multiple_of) * self.pad_to_multiple_of
            batch["labels"] = pad_sequences(labels, self.label_pad_token_id, n, self.padding_side,
                                            dtype=torch.long)
            prepare = getattr(self.model, "prepare_decoder_input_ids_from_labels", None)
            if prepare is not None and "decoder_input_ids" not in batch:
                batch["decoder_input_ids"] = prepare(labels=batch["labels"])
        return batch


class DataCollatorForLanguageModeling(_Padder):
    """Batches for language-model training.

    mlm=True: each real token is picked with `mlm_probability` (special tokens and padding
    never); `labels` hold the picked tokens' ids and -100 elsewhere; of the picked inputs 80%
    become the mask token, 10% a random token, 10% stay as they are (BERT, arXiv:1810.04805).
    mlm=False (causal LM): `labels` are the input ids with padding set to -100; the model
    shifts them itself.
    """

    def __init__(self, tokenizer=None, mlm: bool = True, mlm_probability: float = 0.15,
                 pad_to_multiple_of: int | None = None, return_tensors: str = "pt", *,
                 pad_token_id: int | None = None, mask_token_id: int | None = None,
                 vocab_size: int | None = None, special_token_ids: Sequence[int] | None = None):
        super().__init__(tokenizer, True, None, pad_to_multiple_of, pad_token_id)
        self.mlm = mlm
        if not 0.0 < mlm_probability < 1.0:
            raise InputError(f"mlm_probability must be in (0, 1), found {mlm_probability!r}")
        self.mlm_probability = mlm_probability
        if mlm:
            self.mask_token_id = _require(mask_token_id, tokenizer, "mask_token_id",
                                          "masked-LM collation needs a mask token")
            self.vocab_size = vocab_size if vocab_size is not None else len(tokenizer)
            ids = special_token_ids if special_token_ids is not None else getattr(tokenizer, "all_special_ids", [])
            self.special_token_ids = torch.tensor(sorted({int(i) for i in ids}), dtype=torch.long)

    def __call__(self, features: list[Mapping]) -> dict[str, torch.Tensor]:
        features = [_rename_label(f) for f in _check_features(features)]
        if "input_ids" not in features[0]:
            raise InputError(f"language-model collation needs 'input_ids' in every item, found {sorted(features[0])}")
        features = [{k: v for k, v in f.items() if k != "labels"} for f in features]
        batch = self.pad(features)
        special = batch.pop("special_tokens_mask", None)
        if self.mlm:
            batch["input_ids"], batch["labels"] = self.mask_tokens(batch["input_ids"], special)
        else:
            labels = batch["input_ids"].clone()
            if "attention_mask" in batch:
                labels[batch["attention_mask"] == 0] = IGNORE_INDEX
            else:
                labels[labels == self.pad_token_id] = IGNORE_INDEX
            batch["labels"] = labels
        return batch

    def mask_tokens(self, input_ids: torch.Tensor, special_tokens_mask: torch.Tensor | None = None):
        """-> (masked inputs, labels) by the 80/10/10 rule."""
        inputs, labels = input_ids.clone(), input_ids.clone()
        if special_tokens_mask is None:
            special = torch.isin(inputs, self.special_token_ids) | (inputs == self.pad_token_id)
        else:
            special = special_tokens_mask.bool() | (inputs == self.pad_token_id)
        prob = torch.full(inputs.shape, self.mlm_probability).masked_fill_(special, 0.0)
        picked = torch.bernoulli(prob).bool()
        labels[~picked] = IGNORE_INDEX
        masked = torch.bernoulli(torch.full(inputs.shape, 0.8)).bool() & picked
        inputs[masked] = self.mask_token_id
        randomised = torch.bernoulli(torch.full(inputs.shape, 0.5)).bool() & picked & ~masked
        inputs[randomised] = torch.randint(self.vocab_size, inputs.shape, dtype=inputs.dtype)[randomised]
        return inputs, labels


def _require(value, tokenizer, attr: str, why: str):
    value = value if value is not None else getattr(tokenizer, attr, None)
    if value is None:
        raise InputError(f"{why}: the tokenizer has no {attr}; pass {attr}=")
    return int(value)


__all__ = [
    "default_data_collator", "pad_sequences", "DataCollatorWithPadding",
    "DataCollatorForLanguageModeling", "DataCollatorForTokenClassification",
    "DataCollatorForSeq2Seq", "IGNORE_INDEX",
]
