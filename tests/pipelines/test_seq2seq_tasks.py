"""text2text-generation, summarization and translation (removed from transformers 5) on a tiny
random T5 with a small Unigram tokenizer: results equal the expectation built from
transformers' own T5 `generate()` and tokenizer on the same checkpoint and inputs; the task
settings of `task_specific_params` apply; batching keeps results and order; bad input."""

from __future__ import annotations

import pytest
import torch
import transformers

import loom
from tests.pipelines.test_text_tasks import assert_same

WORDS = "the a cat dog sat on mat big small house summarize translate English to German : . , is was".split()
TEXTS = ["the cat sat on the mat.", "a big dog", "the small house is big, the cat was on the mat.", "dog"]
TASK_PARAMS = {
    "summarization": {"prefix": "summarize: ", "max_length": 9, "num_beams": 3, "no_repeat_ngram_size": 2,
                      "early_stopping": True},
    "translation_en_to_de": {"prefix": "translate English to German: ", "max_length": 7},
}


def t5_tokenizer() -> transformers.T5Tokenizer:
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [("▁" + w, -3.0 - i * 0.1) for i, w in enumerate(WORDS)]
    vocab += [(c, -8.0) for c in "abcdefghijklmnopqrstuvwxyz:.,"]
    return transformers.T5Tokenizer(vocab=vocab, extra_ids=3)


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory):
    tok = t5_tokenizer()
    torch.manual_seed(0)
    config = transformers.T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                   num_heads=4, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                                   feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                                   task_specific_params=TASK_PARAMS)
    model = transformers.T5ForConditionalGeneration(config).eval()
    folder = tmp_path_factory.mktemp("tiny-t5")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder, model, tok


def expected(model, tok, texts, name="generated", prefix="", **generate_kwargs):
    """What the reference model and tokenizer give, one input at a time."""
    out = []
    for text in texts:
        ids = tok(prefix + text, return_tensors="pt")["input_ids"]
        sequences = model.generate(ids, do_sample=False, **generate_kwargs)
        out.append([{f"{name}_text": tok.decode(s, skip_special_tokens=True)} for s in sequences])
    return out


def test_text2text_generation_equals_the_reference_generate(t5_folder):
    folder, model, tok = t5_folder
    pipe = loom.pipeline("text2text-generation", model=str(folder))
    want = expected(model, tok, TEXTS, max_new_tokens=8)
    assert_same(pipe(TEXTS[0], max_new_tokens=8), want[0])  # one input: a list of one dict
    assert_same(pipe(TEXTS, max_new_tokens=8), [w[0] for w in want])  # a list: one dict each
    batched = loom.pipeline("text2text-generation", model=str(folder), batch_size=3)
    assert_same(batched(TEXTS, max_new_tokens=8), [w[0] for w in want])  # padding changes nothing
    beams = expected(model, tok, TEXTS[:2], max_new_tokens=6, num_beams=3, num_return_sequences=2)
    assert_same(batched(TEXTS[:2], max_new_tokens=6, num_beams=3, num_return_sequences=2), beams)
    ids = pipe(TEXTS[1], max_new_tokens=5, return_tensors=True)[0]["generated_token_ids"]
    ref = model.generate(tok(TEXTS[1], return_tensors="pt")["input_ids"], max_new_tokens=5, do_sample=False)
    assert ids == ref[0].tolist()


def test_task_is_read_from_the_architecture(t5_folder):
    folder, _, _ = t5_folder
    assert loom.pipeline(model=str(folder)).task == "text2text-generation"


def test_summarization_uses_the_task_settings_of_the_config(t5_folder):
    folder, model, tok = t5_folder
    pipe = loom.pipeline("summarization", model=str(folder), batch_size=2)
    settings = {k: v for k, v in TASK_PARAMS["summarization"].items() if k != "prefix"}
    want = expected(model, tok, TEXTS, name="summary", prefix="summarize: ", **settings)
    assert_same(pipe(TEXTS), [w[0] for w in want])
    # a call's argument wins over the config's
    want = expected(model, tok, TEXTS[:1], name="summary", prefix="summarize: ", **{**settings, "num_beams": 1})
    assert_same(pipe(TEXTS[0], num_beams=1), want[0])
    # and the prefix can be replaced
    want = expected(model, tok, TEXTS[:1], name="summary", prefix="", **settings)
    assert_same(pipe(TEXTS[0], prefix=""), want[0])


def test_translation_task_names_pick_the_prefix(t5_folder):
    folder, model, tok = t5_folder
    want = expected(model, tok, TEXTS, name="translation", prefix="translate English to German: ", max_length=7)
    for pipe in (loom.pipeline("translation_en_to_de", model=str(folder)),
                 loom.pipeline("translation", model=str(folder))):  # the config's only translation entry
        assert_same(pipe(TEXTS), [w[0] for w in want])
    generic = loom.pipeline("translation", model=str(folder), src_lang="en", tgt_lang="de")
    assert_same(generic(TEXTS[:2]), [w[0] for w in want[:2]])


def test_bad_inputs_are_named(t5_folder):
    folder, _, _ = t5_folder
    pipe = loom.pipeline("summarization", model=str(folder))
    with pytest.raises(loom.InputError, match="empty string"):
        pipe("  ")
    with pytest.raises(loom.InputError, match="empty list"):
        pipe([])
    with pytest.raises(loom.InputError, match="None"):
        pipe(None)
    with pytest.raises(loom.InputError, match=r"inputs\[1\] must be a str"):
        pipe(["fine", 3])
    with pytest.raises(loom.ConfigError, match="num_beams"):
        pipe("text", num_beams=0)
    with pytest.raises(loom.InputError, match="unknown argument"):
        pipe("text", beams=2)
    with pytest.raises(loom.InputError, match="src_lang"):
        loom.pipeline("translation", model=str(folder), src_lang="en")("the cat")


def test_command_line_summarizes(t5_folder, capsys):
    from loom.cli import main

    folder, model, tok = t5_folder
    settings = {k: v for k, v in TASK_PARAMS["summarization"].items() if k != "prefix"}
    want = expected(model, tok, TEXTS[:2], name="summary", prefix="summarize: ", **settings)
    assert main(["run", "summarization", *TEXTS[:2], "--model", str(folder), "--json"]) == 0
    rows = __import__("json").loads(capsys.readouterr().out)
    assert [r["result"] for r in rows] == [w[0] for w in want]
