"""GPT-2 against the reference `transformers` implementation on tiny random models."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import loom
from loom.errors import ConfigError, InputError
from tests.helpers import (
    assert_close,
    check_cached_decode,
    check_head_mask_equals_pruning,
    check_left_padding_invariance,
    check_parity,
    check_save_load,
    left_pad,
    max_diff,
)

VOCAB, PAD = 89, 0
ATOL = 1e-4
BASE = dict(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=40, pad_token_id=PAD,
            bos_token_id=1, eos_token_id=2, attn_implementation="eager")
CONFIGS = {
    "base": {},
    "inner-relu-untied": dict(n_inner=20, activation_function="relu", tie_word_embeddings=False),
    "scaled-by-layer": dict(scale_attn_by_inverse_layer_idx=True, n_layer=3, n_head=2),
    "upcast-unscaled": dict(reorder_and_upcast_attn=True, scale_attn_weights=False, layer_norm_epsilon=1e-3),
}


def make_pair(tmp_path, name: str, cls: str = "GPT2LMHeadModel", **extra):
    torch.manual_seed(0)
    ref = getattr(transformers, cls)(transformers.GPT2Config(**{**BASE, **CONFIGS[name], **extra})).eval()
    with torch.no_grad():  # random biases and norms, so that they count
        for n, p in ref.named_parameters():
            if n.endswith("bias") or ".ln_" in n:
                p.normal_(0.0 if n.endswith("bias") else 1.0, 0.1)
    folder = tmp_path / f"hf-{name}-{cls}"
    ref.save_pretrained(folder)
    return getattr(loom, cls).from_pretrained(folder), ref, folder


def batch(B=3, T=11, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (B, T), generator=g)


@pytest.mark.parametrize("name", CONFIGS)
def test_lm_parity(tmp_path, name):
    ours, ref, _ = make_pair(tmp_path, name)
    report = ours.loading_report
    assert report.missing_keys == [] and report.unexpected_keys == []
    check_parity(ours, ref, {"input_ids": batch()}, fields=["logits"], atol=ATOL)
    g = torch.Generator().manual_seed(3)
    rows = [torch.randint(3, VOCAB, (n,), generator=g).tolist() for n in (11, 6, 2)]
    ids, mask = left_pad(rows, PAD)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        a = ours(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        b = ref(ids, attention_mask=mask, position_ids=positions, output_hidden_states=True, output_attentions=True)
    real = mask.bool()
    assert_close(a.logits[real], b.logits[real], ATOL, "padded logits")
    assert_close([h[real] for h in a.hidden_states], [h[real] for h in b.hidden_states], ATOL, "hidden")
    assert_close([w.transpose(1, 2)[real] for w in a.attentions], [w.transpose(1, 2)[real] for w in b.attentions],
                 ATOL, "attentions")
    check_left_padding_invariance(ours, rows, PAD)


def test_base_model_and_token_types(tmp_path):
    ours, ref, _ = make_pair(tmp_path, "base", cls="GPT2Model")
    ids = batch()
    types = torch.randint(0, 3, ids.shape)
    with torch.no_grad():
        a = ours(ids, token_type_ids=types, output_hidden_states=True).hidden_states
        b = ref(ids, token_type_ids=types, output_hidden_states=True).hidden_states
    assert len(a) == 3
    assert_close(a, b, ATOL, "hidden states with token types")


def test_sequence_classification_last_non_pad_token(tmp_path):
    ours, ref, _ = make_pair(tmp_path, "base", cls="GPT2ForSequenceClassification", num_labels=3)
    ids = batch()
    ids[0, 7:] = PAD  # right padding: row 0 ends at 6
    mask = (ids != PAD).long()
    labels = torch.tensor([2, 0, 1])
    with torch.no_grad():
        a = ours(ids, attention_mask=mask, labels=labels)
        b = ref(ids, attention_mask=mask, labels=labels)
        alone = ours(ids[:1, :7]).logits
    assert_close(a.logits, b.logits, ATOL, "pooled logits")
    assert_close(a.loss, b.loss, ATOL, "loss")
    assert_close(a.logits[:1], alone, 1e-5, "row 0 pooled at its last real token")
    ours.config.pad_token_id = None  # without a pad id, the attention mask finds the last token
    with torch.no_grad():
        assert_close(ours(ids, attention_mask=mask).logits, a.logits, 1e-6, "by attention mask")
    with pytest.raises(InputError, match="pad_token_id"):
        ours(ids)


def test_conv1d_layout_round_trip(tmp_path):
    """Checkpoint weights are (in, out); loom keeps them so, and transformers reads loom's save."""
    ours, ref, folder = make_pair(tmp_path, "inner-relu-untied")
    c_fc = ours.transformer.h[0].mlp.c_fc
    assert c_fc.weight.shape == (32, 20)
    assert max_diff(c_fc.weight, ref.transformer.h[0].mlp.c_fc.weight) == 0
    ours.save_pretrained(tmp_path / "loom")
    saved = load_file(tmp_path / "loom" / "model.safetensors")
    assert saved["transformer.h.0.attn.c_attn.weight"].shape == (32, 96)
    again = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "loom")
    with torch.no_grad():
        assert max_diff(again(batch()).logits, ours(batch()).logits) <= ATOL
    check_save_load(ours, tmp_path / "again", {"input_ids": batch()})
    cfg = json.loads((tmp_path / "loom" / "config.json").read_text())
    assert cfg["n_embd"] == 32 and "hidden_size" not in cfg and cfg["model_type"] == "gpt2"


def test_legacy_checkpoint_layout(tmp_path):
    """The original gpt2 files: no `transformer.` prefix, causal-mask buffers, no lm_head."""
    ours, ref, folder = make_pair(tmp_path, "base")
    state = load_file(folder / "model.safetensors")
    legacy = {k.removeprefix("transformer."): v for k, v in state.items() if not k.startswith("lm_head")}
    for i in range(2):
        legacy[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, 40, 40))
        legacy[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(legacy, folder / "model.safetensors")
    old = loom.GPT2LMHeadModel.from_pretrained(folder)
    assert old.loading_report.unexpected_keys == [] and old.loading_report.missing_keys == []
    with torch.no_grad():
        assert max_diff(old(batch()).logits, ref(batch()).logits) <= ATOL


def test_cached_decode_and_generation_parity(tmp_path):
    ours, ref, _ = make_pair(tmp_path, "scaled-by-layer")
    check_cached_decode(ours, batch(T=12), prefill=4)
    ids = batch(B=2, T=5)
    for kw in (dict(), dict(num_beams=3, num_return_sequences=2)):
        a = ours.generate(ids, max_new_tokens=8, **kw)
        b = ref.generate(ids, max_new_tokens=8, do_sample=False, **kw)
        assert a.tolist() == b.tolist()


def test_head_mask_pruning_and_resize(tmp_path):
    _, _, folder = make_pair(tmp_path, "base")
    inputs = {"input_ids": batch()}
    check_head_mask_equals_pruning(lambda: loom.GPT2LMHeadModel.from_pretrained(folder), inputs,
                                   layer=1, heads=[0, 2], num_layers=2, num_heads=4)
    model = loom.GPT2LMHeadModel.from_pretrained(folder)
    model.prune_heads({0: [3], 1: [1]})
    model.prune_heads({0: [0]})
    assert model.config.pruned_heads == {0: [0, 3], 1: [1]}
    assert model.transformer.h[0].attn.c_attn.weight.shape == (32, 48)
    check_save_load(model, tmp_path, inputs)
    # resize: tied lm_head follows, old logits unchanged
    model = loom.GPT2LMHeadModel.from_pretrained(folder)
    with torch.no_grad():
        before = model(**inputs).logits
    model.resize_token_embeddings(VOCAB + 3)
    assert model.lm_head.weight is model.transformer.wte.weight
    with torch.no_grad():
        assert max_diff(model(**inputs).logits[..., :VOCAB], before) == 0.0
    model.save_pretrained(tmp_path / "resized")
    ref = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "resized")
    with torch.no_grad():
        assert max_diff(ref(**inputs).logits, model(**inputs).logits) <= ATOL


def test_config_aliases_and_errors(tmp_path):
    config = loom.GPT2Config(n_embd=48, n_layer=3, n_head=6)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (48, 3, 6)
    config.hidden_size = 24
    assert config.n_embd == 24 and config.head_dim == 4
    assert loom.GPT2Config.from_dict({"hidden_size": 64, "n_head": 4}).n_embd == 64
    with pytest.raises(ConfigError, match="n_embd=30 is not divisible by n_head=4"):
        loom.GPT2Config(n_embd=30, n_head=4)
    with pytest.raises(ConfigError, match="add_cross_attention"):
        loom.GPT2Config(add_cross_attention=True)
    ours, _, _ = make_pair(tmp_path, "base")
    with pytest.raises(InputError, match="n_positions=40"):
        ours(torch.ones(1, 41, dtype=torch.long))
    out = ours(torch.ones(1, 39, dtype=torch.long), use_cache=True)
    with pytest.raises(InputError, match="39 cached"):
        ours(torch.ones(1, 2, dtype=torch.long), past_key_values=out.past_key_values)
    with pytest.raises(InputError, match="prompt has 41 tokens"):
        ours.generate(torch.ones(1, 41, dtype=torch.long))
