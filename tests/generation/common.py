"""Tiny random causal LMs shared by the generation tests: the same weights in loom and in
transformers."""

from __future__ import annotations

import torch
import transformers

import loom

VOCAB, PAD, BOS, EOS = 61, 0, 1, 2


def llama_pair(folder, seed: int = 0, **kw):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
        **kw)
    ref = transformers.LlamaForCausalLM(config).eval()
    ref.save_pretrained(folder)
    return loom.LlamaForCausalLM.from_pretrained(folder), ref


def gpt2_pair(folder, seed: int = 0, **kw):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=48,
                                     pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, **kw)
    ref = transformers.GPT2LMHeadModel(config).eval()
    ref.save_pretrained(folder)
    return loom.GPT2LMHeadModel.from_pretrained(folder), ref


def prompts(lengths=(7, 4, 2), seed: int = 3) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, VOCAB, (n,), generator=g).tolist() for n in lengths]


def frequent_tokens(model, ids, mask=None, n: int = 2, steps: int = 12) -> list[int]:
    """Tokens the model generates often: as eos ids they make sequences end early."""
    out = model.generate(ids, attention_mask=mask, max_new_tokens=steps, eos_token_id=None)
    counts = torch.bincount(out[:, ids.shape[1]:].flatten(), minlength=VOCAB)
    counts[:3] = 0
    return counts.topk(n).indices.tolist()
