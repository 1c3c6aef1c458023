"""WhisperTokenizer against transformers' WhisperTokenizer on a small byte-level BPE vocabulary
built here with Whisper's special tokens: ids, prefixes, decoding with and without timestamps,
offsets, prompts, save/load both ways."""

from __future__ import annotations

import json

import numpy as np
import pytest
import transformers

from loom.auto import AutoTokenizer
from loom.errors import InputError, TokenizerError
from loom.models.whisper import WhisperTokenizer
from tests.models.whisper.tiny import save_reference_tokenizer

TEXTS = ["the cat in the hat", " a thin  thing\n", "héllo wörld, ça va? 日本", "<|en|> the<|endoftext|>", "", "in"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_reference_tokenizer(tmp_path_factory.mktemp("whisper-tokenizer"))


@pytest.fixture
def pair(folder):
    return AutoTokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)


def test_auto_tokenizer_and_encoding(pair):
    ours, ref = pair
    assert type(ours) is WhisperTokenizer and ours.tokenizer_class == "WhisperTokenizer"
    assert len(ours) == len(ref) == 256 + 7 + 1 + 107 + 1501
    for text in TEXTS:
        assert ours(text)["input_ids"] == ref(text)["input_ids"], text
        assert ours(text, add_special_tokens=False)["input_ids"] == ref(text, add_special_tokens=False)["input_ids"]
    assert ours(TEXTS, padding=True)["input_ids"] == ref(TEXTS, padding=True)["input_ids"]
    assert ours("the cat", "in the hat")["input_ids"] == ref("the cat", "in the hat")["input_ids"]
    ids = ours("the cat")["input_ids"]
    assert ours.convert_ids_to_tokens(ids[:2]) == ["<|startoftranscript|>", "<|notimestamps|>"]
    assert ids[-1] == ours.eos_token_id == ours.convert_tokens_to_ids("<|endoftext|>")


@pytest.mark.parametrize("language,task,timestamps", [
    ("fr", "translate", False), ("English", None, True), (None, "transcribe", False), ("mandarin", "transcribe", True),
])
def test_prefix_tokens(pair, language, task, timestamps):
    ours, ref = pair
    ours.set_prefix_tokens(language=language, task=task, predict_timestamps=timestamps)
    ref.set_prefix_tokens(language=language, task=task, predict_timestamps=timestamps)
    assert ours.prefix_tokens == ref.prefix_tokens
    assert ours(TEXTS[0])["input_ids"] == ref(TEXTS[0])["input_ids"]
    assert ours.get_decoder_prompt_ids(task="translate", language="de") == \
        ref.get_decoder_prompt_ids(task="translate", language="de")
    assert ours(TEXTS[0])["input_ids"] == ref(TEXTS[0])["input_ids"]  # the prompt ids set the prefix too


def test_prefix_from_pretrained_and_save_both_ways(folder, tmp_path):
    ours = WhisperTokenizer.from_pretrained(folder, language="spanish", task="translate")
    ref = transformers.WhisperTokenizer.from_pretrained(folder, language="spanish", task="translate")
    assert ours(TEXTS[0])["input_ids"] == ref(TEXTS[0])["input_ids"]
    ours.save_pretrained(tmp_path / "loom")
    config = json.loads((tmp_path / "loom" / "tokenizer_config.json").read_text())
    assert (config["language"], config["task"]) == ("spanish", "translate")
    assert config["tokenizer_class"] == "WhisperTokenizer"
    back = transformers.AutoTokenizer.from_pretrained(tmp_path / "loom")
    again = AutoTokenizer.from_pretrained(tmp_path / "loom")
    for text in TEXTS:
        assert back(text)["input_ids"] == ref(text)["input_ids"] == again(text)["input_ids"]
    ids = ref(TEXTS[2])["input_ids"]
    assert back.decode(ids) == again.decode(ids) == ref.decode(ids)


def _ids(tok):
    """A transcript with a text prompt, language, timestamps (a closed pair, a new 30 s window)."""
    begin = tok.convert_tokens_to_ids("<|notimestamps|>") + 1
    text = tok(" the cat in", add_special_tokens=False)["input_ids"]
    prompt = [tok.convert_tokens_to_ids("<|startofprev|>"), *tok(" hat", add_special_tokens=False)["input_ids"]]
    body = [tok.convert_tokens_to_ids("<|startoftranscript|>"), tok.convert_tokens_to_ids("<|fr|>"), begin, *text,
            begin + 50, begin + 50, *text[:2], begin + 120, begin + 3, *text[1:], begin + 40, tok.eos_token_id]
    single = [begin, *text, begin + 70, begin + 10, *text, begin + 30]  # a window closed by a single timestamp
    return [body, prompt + body, single, text]


@pytest.mark.parametrize("kwargs", [
    {}, dict(skip_special_tokens=True), dict(decode_with_timestamps=True),
    dict(decode_with_timestamps=True, skip_special_tokens=True, time_precision=0.04),
    dict(output_offsets=True), dict(output_offsets=True, skip_special_tokens=True),
])
def test_decode(pair, kwargs):
    ours, ref = pair
    for ids in _ids(ref):
        assert ours.decode(ids, **kwargs) == ref.decode(ids, **kwargs), ids
        assert ours.decode(np.array(ids), **kwargs) == ref.decode(ids, **kwargs)
    offsets = ours.decode(_ids(ref)[0], output_offsets=True)["offsets"]
    # <|2.40|> closed its window alone (text before it), so the window after it starts 30 s later
    assert [o["timestamp"] for o in offsets] == [(0.0, 1.0), (1.0, 2.4), (30.06, 30.8)]


def test_batch_decode(pair):
    ours, ref = pair
    rows = _ids(ref)
    rows = [rows[0], rows[2]]
    for kwargs in ({}, dict(skip_special_tokens=True), dict(decode_with_timestamps=True)):
        assert ours.batch_decode(rows, **kwargs) == ref.batch_decode(rows, **kwargs)
        assert ours.decode(rows, **kwargs) == [ref.decode(r, **kwargs) for r in rows]
    # A text prompt is dropped row by row (the reference keeps it when decoding a batch).
    with_prompt = _ids(ref)[1]
    assert ours.batch_decode([with_prompt], skip_special_tokens=True) == \
        [ref.decode(with_prompt, skip_special_tokens=True)]


def test_prompt_ids(pair):
    ours, ref = pair
    assert ours.get_prompt_ids(" the hat ").tolist() == ref.get_prompt_ids(" the hat ").tolist()
    assert ours.get_prompt_ids("the", return_tensors=None) == ref.get_prompt_ids("the").tolist()
    with pytest.raises(TokenizerError, match=r"special token '<\|fr\|>'"):
        ours.get_prompt_ids("the <|fr|> cat")


def test_errors(pair):
    ours, _ = pair
    with pytest.raises(InputError, match="unsupported language 'klingon'; it must be one of"):
        ours.set_prefix_tokens(language="klingon")
    ours.language = None
    with pytest.raises(InputError, match=r"task 'summarize'; it must be one of \['translate', 'transcribe'\]"):
        ours.set_prefix_tokens(task="summarize")
    ours.task = None
    with pytest.raises(InputError, match="normalize"):
        ours.decode([1, 2], normalize=True)
    with pytest.raises(InputError, match="one sequence at a time"):
        ours.decode([[1, 2], [3]], output_offsets=True)
