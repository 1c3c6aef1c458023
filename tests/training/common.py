"""Tiny models and synthetic data shared by the training tests (and the worker scripts they
launch). Everything is built from seeds, so two processes build the same thing."""

from __future__ import annotations

import torch

import loom

VOCAB = 64
PAD, CLS, SEP, MASK = 0, 1, 2, 3


def tiny_bert_config(**overrides) -> "loom.BertConfig":
    values = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=48, max_position_embeddings=48, num_labels=3, pad_token_id=PAD)
    values.update(overrides)
    return loom.BertConfig(**values)


def tiny_bert(cls_name: str = "BertForSequenceClassification", seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return getattr(loom, cls_name)(tiny_bert_config(**overrides))


def topic_items(n: int, seed: int, num_labels: int = 3, min_len: int = 5, max_len: int = 12,
                extra_columns: bool = False) -> list[dict]:
    """Sequences whose class decides which block of token ids its content words come from,
    mixed half-and-half with shared noise ids: a task a tiny BERT can learn to ~100%."""
    g = torch.Generator().manual_seed(seed)
    block = 12
    items = []
    for i in range(n):
        c = i % num_labels
        length = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        words = torch.randint(4 + block * c, 4 + block * (c + 1), (length,), generator=g)
        noise = torch.randint(4 + block * num_labels, VOCAB, (length,), generator=g)
        ids = torch.where(torch.rand(length, generator=g) < 0.5, noise, words)
        item = {"input_ids": [CLS, *ids.tolist(), SEP], "labels": c}
        if extra_columns:
            item["text"] = f"sentence {i}"
            item["id"] = i
        items.append(item)
    return items


def token_items(n: int, seed: int, num_labels: int = 3, min_len: int = 3, max_len: int = 14) -> list[dict]:
    """Per-token tags (token id mod num_labels) with -100 on the special tokens and on a
    random share of positions, so micro-batches hold very different label counts."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        length = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        ids = torch.randint(4, VOCAB, (length,), generator=g)
        tags = (ids % num_labels).masked_fill(torch.rand(length, generator=g) < 0.4, -100)
        items.append({"input_ids": [CLS, *ids.tolist(), SEP], "labels": [-100, *tags.tolist(), -100]})
    return items


def text_items(n: int, seed: int, min_len: int = 6, max_len: int = 20) -> list[dict]:
    """Unlabelled token sequences for masked / causal LM collators."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        length = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        items.append({"input_ids": [CLS, *torch.randint(4, VOCAB, (length,), generator=g).tolist(), SEP]})
    return items


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def max_weight_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
