"""A tiny random transformers Llama exported to GGUF as llama.cpp does (tests/gguf/files.py)
loads back in loom with the HF weights, config and tokenizer; transformers' own GGUF loader
reading the same files is the second reference."""

from __future__ import annotations

import gguf
import pytest
import torch
import transformers

import loom
from loom.errors import CheckpointError, ConfigError, TokenizerError
from loom.modeling.gguf import read_gguf, unpermute_qk
from tests.gguf.files import CORPUS, Q, hf_state, llama_cpp_permute, write_llama_gguf
from tests.helpers import assert_close

TEXTS = CORPUS + ["Hello", " Hello", "", "   ", "a\n\nb", "<|im_start|>user\nhi<|im_end|>",
                  "🎉 emoji 🚀 and 東京", "x1234 y 56", "tab\there"]


def tiny_llama(tied: bool = False, kv_heads: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=128,
        rope_theta=50000.0, rms_norm_eps=1e-5, tie_word_embeddings=tied,
        bos_token_id=1, eos_token_id=2, pad_token_id=2, attn_implementation="eager")
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():   # norms away from 1 so that a swapped norm would show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{(qtype, tied): (hf model, gguf path)}"""
    folder = tmp_path_factory.mktemp("llama_gguf")
    out = {}
    for qtype, tied in ((Q.F32, False), (Q.F32, True), (Q.Q8_0, False), (Q.F16, True)):
        hf = tiny_llama(tied=tied, seed=int(qtype) + tied)
        path = folder / f"tiny-{qtype.name}-{'tied' if tied else 'untied'}.gguf"
        out[qtype.name, tied] = hf, write_llama_gguf(path, hf, qtype=qtype, pre="default")
    return out


def test_permutation_round_trip():
    w = torch.randn(4 * 16, 8)
    permuted = torch.from_numpy(llama_cpp_permute(w.numpy(), 4))
    assert not torch.equal(permuted, w)
    assert torch.equal(unpermute_qk(permuted, 4), w)
    b = torch.randn(2 * 16)   # biases are permuted the same way
    assert torch.equal(unpermute_qk(torch.from_numpy(llama_cpp_permute(b.numpy(), 2)), 2), b)


@pytest.mark.parametrize("tied", [False, True])
def test_f32_export_loads_with_identical_weights(exported, tied):
    hf, path = exported["F32", tied]
    ours = read_gguf(path).state_dict()
    ref = hf_state(hf)
    if tied:
        assert "lm_head.weight" not in ours
        ref.pop("lm_head.weight")
    assert sorted(ours) == sorted(ref)
    for key, value in ref.items():
        assert torch.equal(ours[key].float(), value), key


def test_config_from_metadata(exported):
    hf, path = exported["F32", False]
    c = read_gguf(path).config_dict()
    h = hf.config
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "head_dim",
                "max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id"):
        assert c[key] == getattr(h, key), key
    assert c["rope_theta"] == 50000.0 and c["rms_norm_eps"] == pytest.approx(1e-5)
    assert c["model_type"] == "llama" and c["tie_word_embeddings"] is False
    assert read_gguf(exported["F32", True][1]).config_dict()["tie_word_embeddings"] is True
    # transformers reads the same metadata into the same values
    ref = transformers.AutoConfig.from_pretrained(path.parent, gguf_file=path.name)
    for key in ("vocab_size", "hidden_size", "num_key_value_heads", "head_dim", "tie_word_embeddings"):
        assert c[key] == getattr(ref, key), key


@pytest.mark.parametrize("qtype, tied", [("Q8_0", False), ("F16", True)])
def test_quantised_export_equals_transformers_gguf_loader(exported, qtype, tied):
    hf, path = exported[qtype, tied]
    ours = read_gguf(path).state_dict()
    ref = transformers.LlamaForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    ref_state = {k: v for k, v in ref.state_dict().items() if not (tied and k == "lm_head.weight")}
    assert sorted(ours) == sorted(ref_state)
    for key, value in ref_state.items():
        assert torch.equal(ours[key].float(), value.float()), key
    # ... and both are the original weights up to the quantisation error
    for key, value in hf_state(hf).items():
        if key in ours:
            assert_close(ours[key], value, atol=0.02 if qtype == "Q8_0" else 1e-3, what=key)


def test_tokenizer_equals_transformers_gguf_tokenizer(exported):
    _, path = exported["F32", False]
    ours = loom.Tokenizer.from_pretrained(path.parent, gguf_file=path.name)
    ref = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    assert len(ours) == len(ref) == 320
    for text in TEXTS:
        ids = ours(text)["input_ids"]
        assert ids == ref(text)["input_ids"], text
        assert ours.decode(ids) == ref.decode(ids), text
    assert ours.special_tokens_map == {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                                       "unk_token": "<|endoftext|>", "pad_token": "<|im_end|>"}
    assert ours("<|im_start|>hi")["input_ids"][0] == 1   # control tokens match whole
    chat = [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": "2024?"}]
    for kw in ({"tokenize": False}, {"tokenize": True, "return_dict": False}):
        assert (ours.apply_chat_template(chat, add_generation_prompt=True, **kw)
                == ref.apply_chat_template(chat, add_generation_prompt=True, **kw))


@pytest.mark.parametrize("pre", ["llama-bpe", "qwen2", "gpt-4o"])
def test_regex_pre_tokenizers_equal_transformers(tmp_path, pre):
    path = write_llama_gguf(tmp_path / f"{pre}.gguf", tiny_llama(), pre=pre)
    ours = loom.Tokenizer.from_pretrained(path)
    ref = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    for text in TEXTS:
        assert ours(text)["input_ids"] == ref(text)["input_ids"], text


def test_smollm_pre_tokenizer_splits_digits_as_llama_cpp(exported, tmp_path):
    """llama.cpp's "smollm" pre-tokenizer (StarCoder's) splits digits one by one before the
    GPT-2 regex, as SmolLM2's tokenizer.json does; transformers' GGUF loader does not."""
    _, default_path = exported["F32", False]
    smollm = loom.Tokenizer.from_pretrained(write_llama_gguf(tmp_path / "s.gguf", tiny_llama(), pre="smollm"))
    default = loom.Tokenizer.from_pretrained(default_path)
    digits = [smollm.convert_tokens_to_ids(d) for d in "2024"]
    assert smollm("2024")["input_ids"] == digits
    assert len(default("2024")["input_ids"]) < 4   # the vocabulary has merges of digits
    assert smollm("Hello world")["input_ids"] == default("Hello world")["input_ids"]


def test_tokenizer_adds_bos_when_the_file_says_so(tmp_path):
    path = write_llama_gguf(tmp_path / "bos.gguf", tiny_llama(), add_bos=True, pre="llama-bpe")
    tok = loom.Tokenizer.from_pretrained(path)
    ids = tok("Hello world")["input_ids"]
    assert ids[0] == tok.bos_token_id == 1 and 1 not in ids[1:]
    assert tok("Hello world", add_special_tokens=False)["input_ids"] == ids[1:]
    # saved as tokenizer.json + tokenizer_config.json, it reads the same in both libraries
    tok.save_pretrained(tmp_path / "saved")
    for again in (loom.Tokenizer.from_pretrained(tmp_path / "saved"),
                  transformers.AutoTokenizer.from_pretrained(tmp_path / "saved")):
        assert [again(t)["input_ids"] for t in TEXTS] == [tok(t)["input_ids"] for t in TEXTS]
        assert again.chat_template == tok.chat_template


def test_config_and_tokenizer_from_file_path_or_folder(exported):
    _, path = exported["F32", False]
    for args in ((path,), (path.parent,)):
        kw = {} if args[0] == path else {"gguf_file": path.name}
        config = loom.AutoConfig.from_pretrained(*args, **kw)
        assert type(config).__name__ == "LlamaConfig" and config.num_key_value_heads == 2
        assert loom.AutoTokenizer.from_pretrained(*args, **kw)("Hello")["input_ids"]
    assert loom.Config.from_pretrained(path).hidden_size == 64


# -- bad input -----------------------------------------------------------------------------

def _with_tensor_type(tmp_path, qtype) -> str:
    path = tmp_path / f"{qtype.name}.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = torch.zeros(2, 256 // block * size, dtype=torch.uint8).numpy()
    w.add_tensor("blk.0.attn_q.weight", raw, raw_shape=raw.shape, raw_dtype=qtype)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    return path


@pytest.mark.parametrize("qtype", [Q.Q5_0, Q.IQ4_NL, Q.Q2_K])
def test_unsupported_quantisation_names_type_and_supported_ones(tmp_path, qtype):
    path = _with_tensor_type(tmp_path, qtype)
    g = read_gguf(path)   # the header reads; the tensor cannot be dequantised
    with pytest.raises(CheckpointError) as e:
        g.tensor("blk.0.attn_q.weight")
    msg = str(e.value)
    assert qtype.name in msg and "blk.0.attn_q.weight" in msg and str(path) in msg
    assert all(t in msg for t in ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"))


@pytest.mark.parametrize("keep", [0.5, 0.999, 100, 10])
def test_truncated_file_names_it(exported, tmp_path, keep):
    _, path = exported["F32", False]
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:n])
    with pytest.raises(CheckpointError, match="truncated") as e:
        loom.AutoConfig.from_pretrained(cut)
    assert str(cut) in str(e.value)


def test_not_a_gguf_file_and_unknown_architecture(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(CheckpointError, match="not a GGUF file"):
        read_gguf(bad)
    other = tmp_path / "bert.gguf"
    w = gguf.GGUFWriter(str(other), "bert")
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    with pytest.raises(ConfigError, match="'bert' is not supported; loom reads llama"):
        loom.AutoConfig.from_pretrained(other)
    with pytest.raises(TokenizerError, match="tokenizer.ggml.model is None"):
        loom.Tokenizer.from_pretrained(other)


def test_gguf_file_naming_another_file_is_refused(exported):
    _, path = exported["F32", False]
    with pytest.raises(loom.EntryNotFoundError, match="names another one"):
        loom.AutoConfig.from_pretrained(path, gguf_file="other.gguf")
    with pytest.raises(loom.EntryNotFoundError):
        loom.AutoConfig.from_pretrained(path.parent, gguf_file="missing.gguf")


# -- models --------------------------------------------------------------------------------

@pytest.mark.parametrize("qtype, tied", [("F32", False), ("F32", True), ("Q8_0", False), ("F16", True)])
def test_model_from_gguf_equals_transformers(exported, qtype, tied):
    hf, path = exported[qtype, tied]
    ours = loom.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    assert type(ours).__name__ == "LlamaForCausalLM" and ours.dtype == torch.float32
    assert ours.loading_report.missing_keys == [] and ours.loading_report.unexpected_keys == []
    if tied:
        assert ours.lm_head.weight is ours.model.embed_tokens.weight
    # F32: the original model; quantised: transformers' GGUF loader on the same file
    ref = hf if qtype == "F32" else transformers.LlamaForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, attn_implementation="eager").eval()
    ids = torch.randint(3, 320, (2, 11), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0   # left padding in the second row
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        b = ref(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert_close(a.logits[0], b.logits[0], 1e-4, "logits")
    assert_close(a.logits[1, 4:], b.logits[1, 4:], 1e-4, "logits (padded row)")
    assert_close(a.hidden_states[1:], b.hidden_states[1:], 1e-4, "hidden_states")


def test_gguf_model_in_bf16_and_saved_for_transformers(exported, tmp_path):
    hf, path = exported["F32", False]
    bf16 = loom.AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and bf16.model.embed_tokens.weight.dtype == torch.bfloat16
    ours = loom.AutoModelForCausalLM.from_pretrained(path)
    ours.save_pretrained(tmp_path / "converted")   # GGUF -> safetensors + config.json
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "converted").eval()
    ids = torch.randint(3, 320, (1, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert_close(back(ids).logits, hf(ids).logits, 1e-5, "logits after GGUF -> safetensors")


def test_generate_from_gguf_equals_transformers(exported):
    hf, path = exported["F32", True]
    ours = loom.AutoModelForCausalLM.from_pretrained(path)
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    a = ours.generate(ids, max_new_tokens=12, do_sample=False)
    b = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                    eos_token_id=None, pad_token_id=2)
    n = a.shape[1]
    assert n > ids.shape[1] and a[0].tolist() == b[0, :n].tolist()
