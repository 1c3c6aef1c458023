"""Collators: padding values and sides, label padding, MLM's 80/10/10 rule, causal labels."""

from __future__ import annotations

import pytest
import torch

import loom
from loom import InputError
from loom.training import (DataCollatorForLanguageModeling, DataCollatorForSeq2Seq,
                           DataCollatorForTokenClassification, DataCollatorWithPadding,
                           default_data_collator)
from tests.helpers import minilm_dir


@pytest.fixture(scope="module")
def tokenizer():
    return loom.AutoTokenizer.from_pretrained(minilm_dir())


def test_padding_with_the_real_tokenizer(tokenizer):
    texts = ["a short one", "a somewhat longer sentence to pad the others to", "mid length text"]
    items = [{**tokenizer(t), "label": i, "text": t} for i, t in enumerate(texts)]
    batch = DataCollatorWithPadding(tokenizer)(items)
    ref = tokenizer(texts, padding=True, return_tensors="pt")  # the tokenizer's own padding
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}  # text dropped
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(batch[key], torch.as_tensor(ref[key])), key
    assert batch["labels"].tolist() == [0, 1, 2] and batch["labels"].dtype == torch.long


def test_pad_to_multiple_left_side_and_made_attention_mask():
    items = [{"input_ids": [5, 6, 7], "labels": 1.5}, {"input_ids": [8], "labels": 0.5}]
    batch = DataCollatorWithPadding(pad_token_id=0, pad_to_multiple_of=4)(items)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    assert batch["labels"].dtype == torch.float32  # regression targets stay floats

    class Left:
        pad_token_id, padding_side = 9, "left"

    left = DataCollatorWithPadding(Left())(items)
    assert left["input_ids"].tolist() == [[5, 6, 7], [9, 9, 8]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    fixed = DataCollatorWithPadding(pad_token_id=0, padding="max_length", max_length=5)(items)
    assert fixed["input_ids"].shape == (2, 5)
    with pytest.raises(InputError, match="longer than the padded length 2"):
        DataCollatorWithPadding(pad_token_id=0, padding="max_length", max_length=2)(items)


def test_token_classification_pads_labels_with_minus_100():
    items = [{"input_ids": [1, 5, 6, 2], "labels": [-100, 1, 0, -100]}, {"input_ids": [1, 7, 2], "labels": [-100, 2, -100]}]
    batch = DataCollatorForTokenClassification(pad_token_id=0)(items)
    assert batch["input_ids"].tolist() == [[1, 5, 6, 2], [1, 7, 2, 0]]
    assert batch["labels"].tolist() == [[-100, 1, 0, -100], [-100, 2, -100, -100]]
    with pytest.raises(InputError, match="one label per token"):
        DataCollatorForTokenClassification(pad_token_id=0)([{"input_ids": [1, 2], "labels": [0, 1, 2]}])


def test_seq2seq_pads_targets_to_their_own_length_and_builds_decoder_inputs():
    class Model:
        def prepare_decoder_input_ids_from_labels(self, labels):
            start = torch.full((labels.shape[0], 1), 4)
            return torch.cat([start, labels[:, :-1].clamp(min=0)], dim=1)

    items = [{"input_ids": [5, 6, 7], "labels": [8, 9]}, {"input_ids": [5], "labels": [10, 11, 12, 13]}]
    batch = DataCollatorForSeq2Seq(pad_token_id=0, model=Model())(items)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["labels"].tolist() == [[8, 9, -100, -100], [10, 11, 12, 13]]
    assert batch["decoder_input_ids"].tolist() == [[4, 8, 9, 0], [4, 10, 11, 12]]
    assert "decoder_input_ids" not in DataCollatorForSeq2Seq(pad_token_id=0)(items)


def test_mlm_80_10_10_rule(tokenizer):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (256, 64), generator=g)
    ids[:, 0], ids[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
    items = [{"input_ids": row.tolist()} for row in ids]
    items[0]["input_ids"] = items[0]["input_ids"][:10]  # padding in the batch
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    torch.manual_seed(1)
    batch = collator(items)
    padded = torch.cat([ids[0, :10], torch.zeros(54, dtype=torch.long)])
    original = torch.cat([padded[None], ids[1:]])
    picked = batch["labels"] != -100
    assert torch.equal(batch["labels"][picked], original[picked])  # labels are the original ids
    special = (original == tokenizer.cls_token_id) | (original == tokenizer.sep_token_id) | (batch["attention_mask"] == 0)
    assert not picked[special].any()  # never specials or padding
    assert torch.equal(batch["input_ids"][~picked], original[~picked])
    share = picked.sum().item() / (~special).sum().item()
    assert 0.14 < share < 0.16
    n = picked.sum().item()
    masked = (batch["input_ids"][picked] == tokenizer.mask_token_id).sum().item() / n
    kept = (batch["input_ids"][picked] == original[picked]).sum().item() / n
    assert 0.77 < masked < 0.83 and 0.08 < kept < 0.12 and 0.08 < 1 - masked - kept < 0.12


def test_causal_lm_labels_are_inputs_with_padding_ignored():
    items = [{"input_ids": [5, 6, 7]}, {"input_ids": [8, 0]}]  # 0 is a real token here, not padding
    batch = DataCollatorForLanguageModeling(mlm=False, pad_token_id=0)(items)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[5, 6, 7], [8, 0, -100]]


def test_default_collator_and_errors():
    batch = default_data_collator([{"x": [1.0, 2.0], "label": 1, "s": "t"}, {"x": [3.0, 4.0], "label": 0, "s": "u"}])
    assert set(batch) == {"x", "labels"} and batch["labels"].dtype == torch.long
    with pytest.raises(InputError, match="non-empty list"):
        default_data_collator([])
    with pytest.raises(InputError, match="item 1 must be a dict"):
        default_data_collator([{"x": 1}, 2])
    with pytest.raises(InputError, match="'x' cannot be made into one tensor"):
        default_data_collator([{"x": [1, 2]}, {"x": [3]}])
    with pytest.raises(InputError, match="pad token id"):
        DataCollatorWithPadding(object())
    with pytest.raises(InputError, match="mask token"):
        DataCollatorForLanguageModeling(pad_token_id=0)
