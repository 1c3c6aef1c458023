"""Tiny random BERT checkpoints of every head, sharing the real all-MiniLM-L6-v2 tokenizer
(so words, subwords and offsets are real), written once per test session."""

from __future__ import annotations

import pytest
import torch
import transformers

from tests.helpers import minilm_dir

SHAPE = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=37, max_position_embeddings=64, initializer_range=0.3)
LABELS = {
    "BertForSequenceClassification": ["negative", "neutral", "positive"],
    "BertForTokenClassification": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
    "NLI": ["contradiction", "neutral", "entailment"],
}


def _tokenizer(folder, **overrides):
    tok = transformers.AutoTokenizer.from_pretrained(minilm_dir(), **overrides)
    tok.save_pretrained(folder)


def build(folder, name: str, seed: int = 0, tokenizer_kwargs=None):
    torch.manual_seed(seed)
    labels = LABELS.get(name)
    cls = "BertForSequenceClassification" if name == "NLI" else name
    cfg = dict(SHAPE)
    if labels:
        cfg.update(id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)})
    model = getattr(transformers, cls)(transformers.BertConfig(**cfg)).eval()
    model.save_pretrained(folder)
    _tokenizer(folder, **(tokenizer_kwargs or {}))
    return folder


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """name -> folder of a tiny checkpoint (model + tokenizer), built on first use."""
    root = tmp_path_factory.mktemp("tiny")
    made: dict[str, object] = {}

    def get(name: str, **tokenizer_kwargs):
        key = name + "".join(f"-{k}{v}" for k, v in sorted(tokenizer_kwargs.items()))
        if key not in made:
            made[key] = build(root / key, name, tokenizer_kwargs=tokenizer_kwargs)
        return made[key]

    return get
