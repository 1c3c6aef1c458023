"""Writing small GGUF files for tests with the `gguf` package's GGUFWriter, the way llama.cpp's
converter writes them: llama.cpp tensor names, q/k rows permuted per head, metadata keys.

The name table and the permutation are written here independently of loom's reader, so a
test that reads these files back checks loom against llama.cpp's conventions, not itself.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch

Q = gguf.GGMLQuantizationType

# HF name (inside model.layers.N.) -> llama.cpp name (inside blk.N.)
LAYER = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
GLOBAL = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n'"
    " }}{% endif %}"
)
CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "Hello world! Hello there, friend.",
    "Paris is the capital of France; Berlin is the capital of Germany.",
    "numbers 0123456789 and more 2024", "  spaces\tand\ttabs\nnew lines  ",
    "café naïve façade — ünïcödé 東京 日本語 🚀🎉", "def f(x): return x ** 2",
]


def gguf_name(hf: str) -> str:
    stem, suffix = hf.rsplit(".", 1)
    if stem in GLOBAL:
        return f"{GLOBAL[stem]}.{suffix}"
    _, _, layer, rest = stem.split(".", 3)   # model.layers.N.rest
    return f"blk.{layer}.{LAYER[rest]}.{suffix}"


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py LlamaModel.permute: each head's rows go from
    (half, i) order to (i, half) order."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def byte_level_vocab(vocab_size: int, corpus=CORPUS):
    """A byte-level BPE trained on `corpus`: (tokens by id, merges, token types)."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert len(tokens) <= vocab_size
    while len(tokens) < vocab_size:   # unused ids up to the model's size, as padded vocabularies have
        tokens.append(f"[PAD{len(tokens)}]")
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    types = [3 if t in SPECIALS else (5 if t.startswith("[PAD") else 1) for t in tokens]
    return tokens, merges, types


def write_llama_gguf(path: Path, hf_model, *, qtype=Q.F32, pre: str = "smollm",
                     chat_template: str | None = CHAT_TEMPLATE, name: str = "tiny llama",
                     add_bos: bool = False) -> Path:
    """Export a transformers LlamaForCausalLM as llama.cpp would (2-D weights in `qtype`,
    norms in F32, no output.weight when the embeddings are tied)."""
    c = hf_model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(float(c.rope_parameters["rope_theta"]))
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_vocab_size(c.vocab_size)
    w.add_rope_dimension_count(c.head_dim)
    w.add_file_type(int(qtype))
    tokens, merges, types = byte_level_vocab(c.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(add_bos)
    if chat_template is not None:
        w.add_chat_template(chat_template)
    tied = c.tie_word_embeddings
    for hf, t in hf_model.state_dict().items():
        if tied and hf == "lm_head.weight":
            continue
        a = t.detach().float().numpy()
        if hf.endswith("q_proj.weight"):
            a = llama_cpp_permute(a, c.num_attention_heads)
        elif hf.endswith("k_proj.weight"):
            a = llama_cpp_permute(a, c.num_key_value_heads)
        add_tensor(w, gguf_name(hf), a, qtype if a.ndim == 2 else Q.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)


def add_tensor(w: gguf.GGUFWriter, name: str, a: np.ndarray, qtype) -> None:
    a = np.ascontiguousarray(a)
    if qtype == Q.F32:
        w.add_tensor(name, a.astype(np.float32))
    elif qtype == Q.F16:
        w.add_tensor(name, a.astype(np.float16))
    else:
        q = gguf.quants.quantize(a.astype(np.float32), qtype)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qtype)


def random_k_blocks(qtype, n_blocks: int, seed: int = 0) -> np.ndarray:
    """Random k-quant super-blocks with finite, moderate f16 scales (gguf cannot quantise to
    k-quants, so tests exercise every bit pattern of the quants and scales instead)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    scales = rng.uniform(-0.05, 0.05, size=(n_blocks, 2)).astype(np.float16).view(np.uint8)
    if qtype == Q.Q6_K:       # d is the last two bytes
        raw[:, -2:] = scales[:, :2]
    else:                     # d and dmin lead the block
        raw[:, :4] = scales
    return raw


def hf_state(hf_model) -> dict[str, torch.Tensor]:
    return {k: v.detach().float() for k, v in hf_model.state_dict().items()}
