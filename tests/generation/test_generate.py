"""`generate()` against `transformers.generate` on the same tiny random models: greedy and
beam search token for token, sampling draw for draw, plus loom's own promises (seeds, batch
invariance under left padding, cached == uncached, argument checks)."""

from __future__ import annotations

import json
import logging

import pytest
import torch
import transformers

import loom
from loom.errors import ConfigError, InputError
from tests.generation.common import EOS, PAD, frequent_tokens, gpt2_pair, llama_pair, prompts
from tests.helpers import assert_close, left_pad


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return llama_pair(tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return gpt2_pair(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(params=["llama", "gpt2"])
def pair(request, llama, gpt2):
    return {"llama": llama, "gpt2": gpt2}[request.param]


def padded():
    return left_pad(prompts(), PAD)


def test_greedy_matches_transformers(pair):
    ours, ref = pair
    ids, mask = padded()
    eos = frequent_tokens(ours, ids, mask)
    for kw in (dict(max_new_tokens=12), dict(max_new_tokens=12, eos_token_id=eos), dict(max_length=15)):
        a = ours.generate(ids, attention_mask=mask, **kw)
        b = ref.generate(ids, attention_mask=mask, do_sample=False, **kw)
        assert a.tolist() == b.tolist(), kw
    a = ours.generate(ids[:1], max_new_tokens=10)  # one prompt, no mask
    assert a.tolist() == ref.generate(ids[:1], max_new_tokens=10, do_sample=False).tolist()


def test_greedy_with_processors_matches_transformers(pair):
    ours, ref = pair
    ids, mask = padded()
    eos = frequent_tokens(ours, ids, mask, n=1)
    cases = [
        dict(repetition_penalty=1.6),
        dict(repetition_penalty=0.6, no_repeat_ngram_size=2),
        dict(no_repeat_ngram_size=3),
        dict(eos_token_id=eos, min_new_tokens=6),
        dict(eos_token_id=eos, min_length=10),
    ]
    for kw in cases:
        a = ours.generate(ids, attention_mask=mask, max_new_tokens=12, **kw)
        b = ref.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False, **kw)
        assert a.tolist() == b.tolist(), kw
    banned = ours.generate(ids, attention_mask=mask, max_new_tokens=12, no_repeat_ngram_size=2)[:, ids.shape[1] - 2:]
    for row in banned.tolist():  # no bigram of the generated text repeats
        grams = list(zip(row, row[1:]))
        assert len(grams) == len(set(grams))


BEAM_CASES = [
    dict(num_beams=2),
    dict(num_beams=3, num_return_sequences=3),
    dict(num_beams=4, length_penalty=0.5, num_return_sequences=2),
    dict(num_beams=3, length_penalty=2.0, early_stopping=True),
    dict(num_beams=4, length_penalty=-1.0, early_stopping="never", num_return_sequences=2),
    dict(num_beams=2, early_stopping="never", length_penalty=1.5),
    dict(num_beams=3, no_repeat_ngram_size=2, repetition_penalty=1.3),
]


@pytest.mark.parametrize("case", range(len(BEAM_CASES)))
def test_beam_search_matches_transformers(pair, case):
    ours, ref = pair
    ids, mask = padded()
    kw = dict(BEAM_CASES[case], eos_token_id=frequent_tokens(ours, ids, mask), pad_token_id=3, max_new_tokens=10,
              return_dict_in_generate=True, output_scores=True)
    a = ours.generate(ids, attention_mask=mask, **kw)
    b = ref.generate(ids, attention_mask=mask, do_sample=False, **kw)
    assert a.sequences.tolist() == b.sequences.tolist()
    assert_close(a.sequences_scores, b.sequences_scores, 1e-4, "sequences_scores")
    assert len(a.scores) == len(b.scores)
    assert_close(a.scores, b.scores, 1e-4, "per-step scores")
    assert a.beam_indices.shape == (a.sequences.shape[0], a.sequences.shape[1] - ids.shape[1])


def test_beams_end_early_and_are_padded(llama):
    ours, _ = llama
    ids, mask = padded()
    eos = frequent_tokens(ours, ids, mask)
    out = ours.generate(ids, attention_mask=mask, num_beams=3, max_new_tokens=12, eos_token_id=eos, pad_token_id=3,
                        num_return_sequences=3)
    T, ended = ids.shape[1], 0
    for row in out[:, T:].tolist():
        stops = [i for i, t in enumerate(row) if t in eos]
        if stops and stops[0] < len(row) - 1:
            assert set(row[stops[0] + 1:]) == {3}  # filled with pad_token_id after the end
            ended += 1
    assert ended > 0


SAMPLING = [dict(), dict(temperature=0.7, top_k=10), dict(top_p=0.8), dict(min_p=0.2, top_k=0),
            dict(temperature=1.3, top_p=0.9, top_k=20, repetition_penalty=1.2)]


@pytest.mark.parametrize("kw", SAMPLING, ids=[str(k) for k in SAMPLING])
def test_sampling_draws_as_transformers(pair, kw):
    """Same processed distribution and the same global RNG stream: the same draws."""
    ours, ref = pair
    ids, mask = padded()
    torch.manual_seed(7)
    a = ours.generate(ids, attention_mask=mask, max_new_tokens=10, do_sample=True, **kw)
    torch.manual_seed(7)
    b = ref.generate(ids, attention_mask=mask, max_new_tokens=10, do_sample=True, **kw)
    assert a.tolist() == b.tolist()


def test_sampling_seed_is_reproducible(llama):
    ours, _ = llama
    ids, mask = padded()
    kw = dict(attention_mask=mask, max_new_tokens=15, do_sample=True, temperature=1.5, top_k=0)
    a, b = ours.generate(ids, seed=1, **kw), ours.generate(ids, seed=1, **kw)
    assert a.tolist() == b.tolist()
    assert ours.generate(ids, seed=2, **kw).tolist() != a.tolist()
    g = torch.Generator().manual_seed(1)
    assert ours.generate(ids, generator=g, **kw).tolist() == a.tolist()
    many = ours.generate(ids, seed=3, num_return_sequences=4, **kw)
    assert many.shape[0] == 12 and len({tuple(r) for r in many[:4].tolist()}) > 1
    beams = ours.generate(ids, seed=4, num_beams=2, **kw)
    assert beams.tolist() == ours.generate(ids, seed=4, num_beams=2, **kw).tolist()


def test_batch_invariance_under_left_padding(pair):
    ours, _ = pair
    rows = prompts((9, 5, 1, 6))
    ids, mask = left_pad(rows, PAD)
    T = ids.shape[1]
    for kw in (dict(max_new_tokens=12), dict(max_new_tokens=8, num_beams=3)):
        batch = ours.generate(ids, attention_mask=mask, eos_token_id=None, **kw)
        for i, row in enumerate(rows):
            alone = ours.generate(torch.tensor([row]), eos_token_id=None, **kw)
            assert batch[i, T:].tolist() == alone[0, len(row):].tolist(), (kw, i)


def test_cached_equals_uncached(pair):
    ours, _ = pair
    ids, mask = padded()
    for kw in (dict(), dict(num_beams=3, num_return_sequences=2)):
        a = ours.generate(ids, attention_mask=mask, max_new_tokens=10, **kw)
        b = ours.generate(ids, attention_mask=mask, max_new_tokens=10, use_cache=False, **kw)
        assert a.tolist() == b.tolist()


def test_return_dict_scores_and_cache(pair):
    ours, ref = pair
    ids, mask = padded()
    kw = dict(attention_mask=mask, max_new_tokens=6, return_dict_in_generate=True, output_scores=True,
              output_logits=True, repetition_penalty=1.4)
    a = ours.generate(ids, **kw)
    b = ref.generate(ids, do_sample=False, **kw)
    assert a.sequences.tolist() == b.sequences.tolist()
    assert_close(a.scores, b.scores, 1e-4, "scores")
    assert_close(a.logits, b.logits, 1e-4, "logits")
    assert isinstance(a.past_key_values, loom.DynamicCache)
    assert a.past_key_values.get_seq_length() == a.sequences.shape[1] - 1
    assert isinstance(ours.generate(ids, attention_mask=mask, max_new_tokens=2), torch.Tensor)


def test_eos_list_stops_and_pads(llama):
    ours, _ = llama
    ids, mask = padded()
    eos = frequent_tokens(ours, ids, mask, n=2)
    out = ours.generate(ids, attention_mask=mask, max_new_tokens=20, eos_token_id=eos, pad_token_id=5)
    new = out[:, ids.shape[1]:].tolist()
    assert any(t in eos for t in new[0] + new[1] + new[2])
    for row in new:
        hits = [i for i, t in enumerate(row) if t in eos]
        if hits:
            assert all(t == 5 for t in row[hits[0] + 1:])
    if all(any(t in eos for t in row) for row in new):
        assert len(new[0]) < 20  # every row ended: generation stopped before max_new_tokens


def test_lengths(llama, gpt2, caplog):
    ours, _ = llama
    ids = torch.tensor([prompts()[0]])
    assert ours.generate(ids, eos_token_id=None).shape[1] == 7 + 20  # default: 20 new tokens
    assert ours.generate(ids, eos_token_id=None, max_length=11).shape[1] == 11
    assert ours.generate(ids, eos_token_id=None, max_length=11, max_new_tokens=2).shape[1] == 9
    with pytest.raises(InputError, match="max_length=7 leaves no room"):
        ours.generate(ids, max_length=7)
    small, _ = gpt2  # n_positions=48
    long = torch.randint(3, 60, (1, 40))
    with caplog.at_level(logging.WARNING, logger="loom.generation.mixin"):
        out = small.generate(long, max_new_tokens=20, eos_token_id=None)
    assert out.shape[1] == 48 and "stops at 48 tokens" in caplog.text
    with pytest.raises(InputError, match="prompt has 49 tokens; this model takes at most 48"):
        small.generate(torch.randint(3, 60, (1, 49)))
    llama_limit = ours.config.max_position_embeddings
    with pytest.raises(InputError, match=f"at most {llama_limit}"):
        ours.generate(torch.ones(1, llama_limit + 1, dtype=torch.long))


@pytest.mark.parametrize("kw, match", [
    (dict(top_p=0.0, do_sample=True), r"top_p must be in \(0, 1\], found 0.0"),
    (dict(top_p=1.5), r"top_p must be in \(0, 1\], found 1.5"),
    (dict(temperature=0.0, do_sample=True), "temperature must be > 0 when do_sample=True"),
    (dict(temperature=-1, do_sample=True), "temperature must be > 0"),
    (dict(top_k=-1), "top_k must be an int >= 0"),
    (dict(min_p=1.5, do_sample=True), r"min_p must be in \[0, 1\]"),
    (dict(num_beams=0), "num_beams must be an int >= 1"),
    (dict(num_beams=2, num_return_sequences=3), "num_return_sequences must be <= num_beams=2"),
    (dict(num_return_sequences=2), "num_return_sequences must be 1 for greedy"),
    (dict(max_new_tokens=0), "max_new_tokens must be an int >= 1"),
    (dict(repetition_penalty=0.0), "repetition_penalty must be > 0"),
    (dict(early_stopping="sometimes", num_beams=2), "early_stopping must be True, False or 'never'"),
    (dict(eos_token_id=-1), "eos_token_id must be a token id"),
    (dict(stop_strings=[""]), "stop_strings must be a non-empty string"),
    (dict(do_sample="yes"), "do_sample must be True or False"),
])
def test_invalid_generation_arguments(llama, kw, match):
    ours, _ = llama
    with pytest.raises(ConfigError, match=match):
        ours.generate(torch.tensor([[4, 5, 6]]), **kw)


def test_invalid_inputs(llama):
    ours, _ = llama
    ids = torch.tensor([[4, 5, 6]])
    with pytest.raises(InputError, match="unknown arguments \\['topp'\\]"):
        ours.generate(ids, topp=0.5)
    with pytest.raises(InputError, match="stop_strings need the model's tokenizer"):
        ours.generate(ids, stop_strings="x")
    with pytest.raises(InputError, match="streamer does not work with beam search"):
        ours.generate(ids, num_beams=2, streamer=loom.TextStreamer(None))
    with pytest.raises(InputError, match="pad prompts on the left"):
        ours.generate(torch.tensor([[4, 5, 0]]), attention_mask=torch.tensor([[1, 1, 0]]))
    with pytest.raises(InputError, match="attention_mask has shape"):
        ours.generate(ids, attention_mask=torch.ones(1, 2))
    with pytest.raises(InputError, match="token ids of shape"):
        ours.generate(torch.rand(1, 3))
    assert ours.generate(temperature=0.0, max_new_tokens=2).tolist()[0][0] == 1  # from bos; greedy ignores it


def test_generation_config_files(tmp_path, llama):
    ours, ref = llama
    config = loom.GenerationConfig.from_dict(dict(max_new_tokens=3, eos_token_id=[2, 7], do_sample=True, top_p=0.5,
                                                  seed_note="x"))
    config.save_pretrained(tmp_path / "g")
    data = json.loads((tmp_path / "g" / "generation_config.json").read_text())
    assert data == {"max_new_tokens": 3, "eos_token_id": [2, 7], "do_sample": True, "top_p": 0.5, "seed_note": "x"}
    hf = transformers.GenerationConfig.from_pretrained(tmp_path / "g")
    assert (hf.max_new_tokens, hf.eos_token_id, hf.top_p) == (3, [2, 7], 0.5)
    hf_saved = transformers.GenerationConfig(num_beams=3, length_penalty=0.7, bos_token_id=1, eos_token_id=2)
    hf_saved.save_pretrained(tmp_path / "h")
    back = loom.GenerationConfig.from_pretrained(tmp_path / "h")
    assert (back.num_beams, back.length_penalty, back.eos_token_id) == (3, 0.7, 2)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "generation_config.json").write_text('{"top_p": 3}')
    with pytest.raises(ConfigError, match="generation_config.json: generation argument top_p"):
        loom.GenerationConfig.from_pretrained(tmp_path / "bad")
    # a model saves its generation config and loads it back; generate follows it
    ours.generation_config = ours.generation_config.update(max_new_tokens=3, eos_token_id=None)
    ours.save_pretrained(tmp_path / "model")
    try:
        again = loom.AutoModelForCausalLM.from_pretrained(tmp_path / "model")
        assert again.generation_config.max_new_tokens == 3
        assert again.generate(torch.tensor([[4, 5]])).shape == (1, 5)
        assert transformers.GenerationConfig.from_pretrained(tmp_path / "model").max_new_tokens == 3
    finally:
        ours.generation_config = loom.GenerationConfig.from_model_config(ours.config)
    assert ours.generation_config.eos_token_id == EOS
