"""Fixtures of the Hub tests: a running test server with HF_ENDPOINT pointing at it, fast
retry settings, and a tiny BERT with its tokenizer."""

from __future__ import annotations

import pytest
import torch

import loom
from loom import hub as loom_hub
from tests.hub_server import HubServer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog",
         "a", "ran", "##s", "big", "red", "hello", "world", ".", ","]
# Retries that finish in well under a second; the bounds themselves are what the tests check.
FAST = loom_hub.NetworkPolicy(attempts=4, base_delay=0.02, max_delay=0.1, max_wait=3.0, timeout=5.0)


@pytest.fixture
def hub(monkeypatch):
    """A started HubServer; loom and huggingface_hub talk to it; stopped afterwards."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)  # the server speaks LFS, not Xet
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(loom_hub, "NETWORK", FAST)
    server = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.stop()


def tiny_model(seed: int = 0) -> loom.BertForMaskedLM:
    torch.manual_seed(seed)
    config = loom.BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    return loom.BertForMaskedLM(config).eval()


def tiny_tokenizer(folder) -> loom.Tokenizer:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return loom.Tokenizer.from_pretrained(folder)


def logits(model, tokenizer, text: str = "the big cat sat on a red mat.") -> torch.Tensor:
    batch = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def repo_files(model=None, tokenizer=None, tmp=None) -> dict[str, bytes]:
    """The files of a saved model (and tokenizer), as a {path: bytes} dict for HubServer.add_commit."""
    folder = tmp / "files"
    if model is not None:
        model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return {p.name: p.read_bytes() for p in folder.iterdir()}
