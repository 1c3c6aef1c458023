"""T5's SentencePiece Unigram tokenizer through loom's Tokenizer, against transformers'
T5Tokenizer (the oracle) on a small Unigram vocabulary laid out as T5's (<pad> </s> <unk>, the
pieces, then <extra_id_N> sentinels in reverse) and a corpus of varied strings."""

from __future__ import annotations

import json
import random

import pytest
import transformers
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

import loom

SENTINELS = 4
WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "hello", "world", "run", "running", "translate", "English",
         "to", "German", "summarize", "is", "good", "for", "you", "study", "studies", "shown", "that"]
PIECES = (["▁" + w for w in WORDS] + ["▁"] + list("abcdefghijklmnopqrstuvwxyzABCDEGHST0123456789.,!?:;'-()")
          + ["ing", "ed", "es", "s", "er", "ation", "un", "re", "▁re", "▁un", "'s", "é", "ü"])
FRAGMENTS = [*WORDS, "Running", "unrelated", "résumé", "Übermut", "naïve", "12:30", "3.14", "e-mail", "don't",
             "(x)", "日本語", "😀", "<extra_id_0>", "<extra_id_3>", "<extra_id_7>", "</s>", "<pad>", "<unk>", "<s>",
             "extra_id_1", "translate English to German:", "summarize:", "QQQ", "zzz"]
JOINERS = ["", " ", " ", " ", "  ", "\t", "\n", " \n "]


def corpus(n: int = 300, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts = ["", " ", "  leading and trailing  ", "\t\n", "<extra_id_0>", "a<extra_id_1>b", "the cat</s>sat"]
    while len(texts) < n:
        words = [rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 12))]
        texts.append("".join(w + rng.choice(JOINERS) for w in words))
    return texts


def unigram(legacy: bool = False) -> Tokenizer:
    """A T5-shaped tokenizer.json. `legacy`: the layout of older files (Metaspace alone, a
    normalizer of its own, no post-processor), which transformers' T5Tokenizer rebuilds."""
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(p, -1.0 - 0.37 * (i % 11) - 0.05 * len(p)) for i, p in enumerate(PIECES)]
    vocab += [(f"<extra_id_{i}>", 0.0) for i in reversed(range(SENTINELS))]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    specials = [t for t, _ in vocab[:3]] + [t for t, _ in vocab[-SENTINELS:]]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    space = dict(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(**space)
    if legacy:
        tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.Metaspace(**space)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(**space)])
        tok.post_processor = processors.TemplateProcessing(single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"],
                                                           special_tokens=[("</s>", 1)])
    return tok


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("t5tok")
    # written by transformers from a tokenizers object
    hf = transformers.T5TokenizerFast(tokenizer_object=unigram(), extra_ids=SENTINELS)
    hf.save_pretrained(root / "saved")
    # an older hub layout: tokenizer.json, a bare tokenizer_config.json, the model's config.json
    minimal = root / "minimal"
    minimal.mkdir()
    unigram(legacy=True).save(str(minimal / "tokenizer.json"))
    (minimal / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))
    (minimal / "config.json").write_text(json.dumps({"model_type": "t5"}))
    return {"saved": root / "saved", "minimal": minimal}


def compare(ours, ref, texts) -> None:
    assert len(ours) == len(ref)
    assert ours.all_special_tokens == ref.all_special_tokens
    assert (ours.eos_token_id, ours.pad_token_id, ours.unk_token_id) == (ref.eos_token_id, ref.pad_token_id,
                                                                          ref.unk_token_id)
    for text in texts:
        a, b = ours(text)["input_ids"], ref(text)["input_ids"]
        assert a == b, text
        assert ours.convert_ids_to_tokens(a) == ref.convert_ids_to_tokens(b)
        for skip in (False, True):
            assert ours.decode(a, skip_special_tokens=skip) == ref.decode(b, skip_special_tokens=skip), (text, skip)
    pairs = list(zip(texts[::2], texts[1::2]))
    kw = dict(padding=True, truncation=True, max_length=12)
    for first, second in pairs[:40]:
        assert ours(first, second)["input_ids"] == ref(first, second)["input_ids"]
    a, b = ours(texts[:50], **kw), ref(texts[:50], **kw)
    assert a["input_ids"] == b["input_ids"] and a["attention_mask"] == b["attention_mask"]


@pytest.mark.parametrize("layout", ["saved", "minimal"])
def test_ids_and_decoding_match_transformers(folders, layout):
    ref = transformers.AutoTokenizer.from_pretrained(folders[layout])
    assert type(ref).__name__ == "T5Tokenizer"
    ours = loom.AutoTokenizer.from_pretrained(folders[layout])
    texts = corpus()
    compare(ours, ref, texts)
    ids = [ours(t)["input_ids"] for t in texts]
    assert all(row[-1] == ours.eos_token_id for row in ids)  # </s> ends every sequence
    assert sum(ours.unk_token_id in row for row in ids) > 10 and sum(len(row) > 8 for row in ids) > 100
    sentinel = ours.convert_tokens_to_ids("<extra_id_0>")
    assert sentinel == 3 + len(PIECES) + SENTINELS - 1  # the layout of T5's vocabulary: reversed, at the end
    assert ours("a <extra_id_0> b")["input_ids"].count(sentinel) == 1


def test_minimal_layout_gets_t5_defaults(folders):
    """No tokenizer class, no special tokens named: model_type t5 gives T5Tokenizer's (</s>,
    <unk>, <pad>, 100 sentinels, the missing ones added after the vocabulary)."""
    ours = loom.AutoTokenizer.from_pretrained(folders["minimal"])
    assert ours.tokenizer_class in ("T5Tokenizer", "T5TokenizerFast")
    assert (ours.eos_token, ours.unk_token, ours.pad_token) == ("</s>", "<unk>", "<pad>")
    assert len(ours.additional_special_tokens) == 100 and ours.additional_special_tokens[99] == "<extra_id_99>"
    assert ours.convert_tokens_to_ids("<extra_id_99>") == len(ours) - 1
    # the file's own Lowercase normalizer is dropped, as the reference's rebuild does
    assert ours.convert_ids_to_tokens(ours("The")["input_ids"])[:2] == ["▁", "T"]
    as_is = Tokenizer.from_file(str(folders["minimal"] / "tokenizer.json"))  # the file without the rebuild
    differ = [t for t in corpus() if as_is.encode(t).ids + [1] != ours(t)["input_ids"]]
    assert len(differ) > 100


def test_loom_save_loads_in_transformers(folders, tmp_path):
    for layout in ("saved", "minimal"):
        ours = loom.AutoTokenizer.from_pretrained(folders[layout])
        ours.save_pretrained(tmp_path / layout)
        ref = transformers.AutoTokenizer.from_pretrained(tmp_path / layout)
        assert type(ref).__name__ == "T5Tokenizer"
        compare(ours, ref, corpus(80, seed=11))
        again = loom.AutoTokenizer.from_pretrained(tmp_path / layout)
        compare(again, ref, corpus(80, seed=12))


def test_tokenizer_feeds_the_model(tmp_path):
    """Token ids (sentinels included) go straight into a T5 model of that vocabulary size."""
    hf = transformers.T5TokenizerFast(tokenizer_object=unigram(), extra_ids=SENTINELS)
    hf.save_pretrained(tmp_path)
    tok = loom.AutoTokenizer.from_pretrained(tmp_path)
    config = loom.T5Config(vocab_size=len(tok), d_model=16, d_kv=4, d_ff=24, num_layers=1, num_heads=2,
                           decoder_start_token_id=tok.pad_token_id)
    model = loom.T5ForConditionalGeneration(config).eval()
    batch = tok(["translate English to German: the cat", "the <extra_id_0> sat on <extra_id_1>"],
                padding=True, return_tensors="pt")
    labels = tok(["<extra_id_0> dog <extra_id_1>", "<extra_id_0> cat"], padding=True, return_tensors="pt").input_ids
    labels[labels == tok.pad_token_id] = -100
    out = model(**batch, labels=labels)
    assert out.logits.shape == (2, labels.shape[1], len(tok)) and out.loss.item() > 0
