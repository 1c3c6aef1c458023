"""T5 against the reference `transformers` implementation on tiny random models: the original
(ReLU, tied, output rescaled) and v1.1 (gated GELU, untied) variants, a gated-SiLU one whose
decoder is deeper than its encoder, encoder padding, losses, head masks and pruning, round
trips both ways, cached decoding and generation."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import loom
from loom.errors import ConfigError, InputError
from loom.modeling.outputs import BaseModelOutput
from loom.nn.cache import DynamicCache, EncoderDecoderCache
from tests.helpers import assert_close, check_head_mask_equals_pruning, check_save_load, max_diff

VOCAB, PAD, EOS, START = 99, 0, 1, 0
ATOL = 1e-4
BASE = dict(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
            relative_attention_num_buckets=8, relative_attention_max_distance=20,  # log buckets past 4 tokens
            pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=START, attn_implementation="eager")
VARIANTS = {
    "t5-relu-tied": dict(feed_forward_proj="relu"),
    "v1.1-gated-gelu-untied": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    "gated-silu-deeper-decoder": dict(feed_forward_proj="gated-silu", num_decoder_layers=3, d_kv=6),
}
OUTPUTS = ("logits", "encoder_last_hidden_state", "encoder_hidden_states", "decoder_hidden_states",
           "encoder_attentions", "decoder_attentions", "cross_attentions")


def hf_model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    kw = VARIANTS[name]
    model = transformers.T5ForConditionalGeneration(transformers.T5Config(**{**BASE, **kw})).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "layer_norm" in n:  # norms away from 1, so that they count in every comparison
                p.normal_(1.0, 0.2)
            elif p.dim() == 2 and not n.startswith(("shared", "lm_head")) and "relative" not in n:
                p.normal_(0.0, 0.25)  # larger than the original's init: greedy decoding then varies
        if kw.get("tie_word_embeddings") is False:
            # transformers 5 ties every T5 it builds; a v1.1 checkpoint has a head of its own
            model.lm_head.weight = torch.nn.Parameter(0.3 * torch.randn_like(model.shared.weight))
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{variant: (reference model, folder it was saved to)}"""
    out = {}
    for name in VARIANTS:
        hf = hf_model(name)
        folder = tmp_path_factory.mktemp(name)
        hf.save_pretrained(folder)
        out[name] = hf, folder
    return out


def load(saved, name, cls=None):
    return (cls or loom.T5ForConditionalGeneration).from_pretrained(saved[name][1])


def encoder_batch(seed=1):
    """Three rows of 30 tokens: full, right-padded and left-padded."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, VOCAB, (3, 30), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 21:] = 0
    mask[2, :6] = 0
    return ids.masked_fill(mask == 0, PAD), mask


def decoder_batch(B=3, T=25, seed=2):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, VOCAB, (B, T), generator=g)
    ids[:, 0] = START
    return ids


def run_both(ours, ref, **inputs):
    flags = dict(output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        # the reference's cache breaks when num_decoder_layers != num_layers: forward without it
        return ours(**inputs, **flags), ref(**inputs, **flags, use_cache=False)


@pytest.mark.parametrize("name", VARIANTS)
def test_conditional_generation_parity(saved, name):
    ours, ref = load(saved, name), saved[name][0]
    assert ours.loading_report.missing_keys == [] and ours.loading_report.unexpected_keys == []
    untied = VARIANTS[name].get("tie_word_embeddings") is False
    assert ours.config.scale_decoder_outputs is not untied
    assert (ours.lm_head.weight is ours.shared.weight) is not untied
    ids, mask = encoder_batch()
    a, b = run_both(ours, ref, input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch())
    for field in OUTPUTS:
        assert_close(a[field], b[field], ATOL, field)
    cfg = ours.config
    assert len(a.encoder_hidden_states) == cfg.num_layers + 1 and len(a.encoder_attentions) == cfg.num_layers
    assert len(a.decoder_hidden_states) == cfg.num_decoder_layers + 1
    assert len(a.cross_attentions) == cfg.num_decoder_layers
    assert a.cross_attentions[0].shape == (3, 4, 25, 30)
    assert a.cross_attentions[0][1, :, :, 21:].abs().max() == 0  # padding gets no attention
    assert a.decoder_attentions[1][0, :, 0, 1:].abs().max() == 0  # causal


def test_padding_matters_and_rows_are_independent(saved):
    ours = load(saved, "t5-relu-tied")
    ids, mask = encoder_batch()
    dec = decoder_batch()
    with torch.no_grad():
        batch = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        alone = ours(input_ids=ids[1:2, :21], decoder_input_ids=dec[1:2]).logits
        unmasked = ours(input_ids=ids, decoder_input_ids=dec).logits
    assert_close(batch[1], alone[0], 1e-5, "right-padded row vs the row alone")
    assert max_diff(batch[1], unmasked[1]) > 1e-3  # the mask is not vacuous


def test_decoder_attention_mask_parity(saved):
    ours, ref = load(saved, "v1.1-gated-gelu-untied"), saved["v1.1-gated-gelu-untied"][0]
    ids, mask = encoder_batch()
    dec = decoder_batch()
    dec_mask = torch.ones_like(dec)
    dec_mask[0, 18:] = 0
    dec_mask[2, 1:4] = 0  # holes in the middle too
    a, b = run_both(ours, ref, input_ids=ids, attention_mask=mask, decoder_input_ids=dec, decoder_attention_mask=dec_mask)
    real = dec_mask.bool()
    assert_close(a.logits[real], b.logits[real], ATOL, "logits at real decoder positions")
    assert_close([w.transpose(1, 2)[real] for w in a.decoder_attentions],
                 [w.transpose(1, 2)[real] for w in b.decoder_attentions], ATOL, "decoder attentions")


@pytest.mark.parametrize("name", ["t5-relu-tied", "gated-silu-deeper-decoder"])
def test_base_and_encoder_models_parity(saved, name):
    ids, mask = encoder_batch()
    folder = saved[name][1]
    base = load(saved, name, loom.T5Model)
    ref_base = transformers.T5Model.from_pretrained(folder, attn_implementation="eager").eval()
    assert base.loading_report.missing_keys == [] and base.loading_report.unexpected_keys == []
    a, b = run_both(base, ref_base, input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch())
    for field in ("last_hidden_state", *OUTPUTS[1:]):
        assert_close(a[field], b[field], ATOL, field)
    enc = load(saved, name, loom.T5EncoderModel)
    ref_enc = transformers.T5EncoderModel.from_pretrained(folder, attn_implementation="eager").eval()
    assert enc.loading_report.missing_keys == [] and enc.loading_report.unexpected_keys == []
    with torch.no_grad():
        x = enc(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        y = ref_enc(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    for field in ("last_hidden_state", "hidden_states", "attentions"):
        assert_close(x[field], y[field], ATOL, field)
    assert enc.get_input_embeddings() is enc.shared and enc.encoder.embed_tokens.weight is enc.shared.weight


@pytest.mark.parametrize("name", ["t5-relu-tied", "v1.1-gated-gelu-untied"])
def test_loss_with_labels(saved, name):
    ours, ref = load(saved, name), saved[name][0]
    ids, mask = encoder_batch()
    labels = decoder_batch(seed=5)[:, :12].contiguous()
    labels[0, 9:] = -100
    labels[2, 5] = -100
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask, labels=labels)
        b = ref(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False)
    assert_close(a.loss, b.loss, ATOL, "loss")
    assert_close(a.logits, b.logits, ATOL, "logits")
    shifted = ours.prepare_decoder_input_ids_from_labels(labels)
    assert torch.equal(shifted, ref._shift_right(labels))
    assert shifted[:, 0].eq(START).all() and shifted[0, 10:].eq(PAD).all()
    full = torch.nn.functional.cross_entropy(a.logits.reshape(-1, VOCAB), labels.reshape(-1), ignore_index=-100)
    assert_close(a.loss, full, 1e-6, "loss is the mean over labelled positions")


# -- head masks and pruning -----------------------------------------------------------------

def scaled_heads(model, path: str, layer_masks: torch.Tensor):
    """The expectation for a head mask, built by hand: scaling head h's probabilities by m is
    scaling the columns of the output projection that read head h."""
    D = model.config.d_kv
    with torch.no_grad():
        for i, row in enumerate(layer_masks):
            o = model.get_submodule(path.format(i)).o.weight  # (C, H * D)
            o.mul_(row.repeat_interleave(D)[None, :])
    return model


@pytest.mark.parametrize("which", ["head_mask", "decoder_head_mask", "cross_attn_head_mask"])
def test_head_masks_equal_scaled_output_projections(saved, which):
    name = "gated-silu-deeper-decoder"  # 2 encoder and 3 decoder layers
    model = load(saved, name)
    L = model.config.num_layers if which == "head_mask" else model.config.num_decoder_layers
    path = {"head_mask": "encoder.block.{}.layer.0.SelfAttention",
            "decoder_head_mask": "decoder.block.{}.layer.0.SelfAttention",
            "cross_attn_head_mask": "decoder.block.{}.layer.1.EncDecAttention"}[which]
    mask = torch.rand(L, 4, generator=torch.Generator().manual_seed(3))
    mask[0, 1] = 0.0
    ids, attn = encoder_batch()
    inputs = dict(input_ids=ids, attention_mask=attn, decoder_input_ids=decoder_batch())
    with torch.no_grad():
        masked = model(**inputs, **{which: mask}, output_attentions=True)
        plain = model(**inputs)
        expected = scaled_heads(load(saved, name), path, mask)(**inputs, output_attentions=True)
    assert_close(masked.logits, expected.logits, ATOL, f"{which} vs scaled output projections")
    assert max_diff(masked.logits, plain.logits) > 1e-3
    weights = {"head_mask": "encoder_attentions", "decoder_head_mask": "decoder_attentions",
               "cross_attn_head_mask": "cross_attentions"}[which]
    for i in range(L):  # the returned probabilities carry the mask
        assert_close(masked[weights][i], expected[weights][i] * mask[i].view(1, -1, 1, 1), 1e-5, weights)
    with torch.no_grad():  # one (H,) row applies to every layer
        one_row = model(**inputs, **{which: mask[0]}).logits
        assert_close(one_row, model(**inputs, **{which: mask[0].expand(L, -1)}).logits, 0.0, "(H,) mask")


@pytest.mark.parametrize("layer, heads", [(0, [1, 3]), (1, [0])])
def test_encoder_head_mask_equals_pruning(saved, layer, heads):
    """Layer 0 owns the relative position bias: pruning it must keep the bias of every head
    for the later layers."""
    ids, attn = encoder_batch()
    inputs = dict(input_ids=ids, attention_mask=attn, decoder_input_ids=decoder_batch())
    check_head_mask_equals_pruning(lambda: load(saved, "t5-relu-tied"), inputs, layer=layer, heads=heads,
                                   num_layers=2, num_heads=4, atol=ATOL)


def test_pruned_model_round_trip(saved, tmp_path):
    model = load(saved, "v1.1-gated-gelu-untied")
    model.prune_heads({0: [0, 2], 1: [3]})
    model.prune_heads({0: [1]})  # original head numbers throughout
    att = model.encoder.block[0].layer[0].SelfAttention
    assert att.q.out_features == 8 and att.kept_heads == [3]
    assert att.relative_attention_bias.weight.shape == (8, 4)  # every head's bias stays
    assert model.config.pruned_heads == {0: [0, 1, 2], 1: [3]}
    ids, attn = encoder_batch()
    again = check_save_load(model, tmp_path, dict(input_ids=ids, attention_mask=attn,
                                                 decoder_input_ids=decoder_batch()))
    assert again.config.pruned_heads == {0: [0, 1, 2], 1: [3]}
    full_mask = torch.ones(2, 4)
    with torch.no_grad():  # a full-size head mask still works on pruned layers
        a = again(input_ids=ids, decoder_input_ids=decoder_batch(), head_mask=full_mask).logits
        assert_close(a, again(input_ids=ids, decoder_input_ids=decoder_batch()).logits, ATOL, "ones mask")
    with pytest.raises(InputError, match="encoder layer 5"):
        model.prune_heads({5: [0]})


# -- round trips ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", VARIANTS)
def test_loom_save_loads_in_transformers(saved, name, tmp_path):
    ours = load(saved, name)
    ours.save_pretrained(tmp_path / "loom")
    keys = set(load_file(tmp_path / "loom" / "model.safetensors"))
    assert "encoder.embed_tokens.weight" not in keys and "decoder.embed_tokens.weight" not in keys
    assert ("lm_head.weight" in keys) is (VARIANTS[name].get("tie_word_embeddings") is False)
    ref = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "loom", attn_implementation="eager")
    ids, mask = encoder_batch()
    a, b = run_both(ours, ref, input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch())
    assert_close(a.logits, b.logits, 1e-5, "logits")
    assert max_diff(a.logits, saved[name][0](input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch(),
                                              use_cache=False).logits) <= 1e-5
    check_save_load(ours, tmp_path / "again", dict(input_ids=ids, attention_mask=mask,
                                                   decoder_input_ids=decoder_batch()))


def test_transformers4_v11_file_and_code_built_model(saved, tmp_path):
    """Files of transformers 4 say `tie_word_embeddings: false` (and no scale_decoder_outputs)
    for v1.1; a model built in loom's code loads in transformers."""
    _, folder = saved["v1.1-gated-gelu-untied"]
    data = json.loads((folder / "config.json").read_text())
    data.pop("scale_decoder_outputs")
    data["tie_word_embeddings"] = False
    old = tmp_path / "v4"
    old.mkdir()
    (old / "config.json").write_text(json.dumps(data))
    (old / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    ours = loom.T5ForConditionalGeneration.from_pretrained(old)
    assert ours.config.scale_decoder_outputs is False and ours.config.tie_word_embeddings is False
    ids, mask = encoder_batch()
    with torch.no_grad():
        expected = saved["v1.1-gated-gelu-untied"][0](input_ids=ids, attention_mask=mask,
                                                      decoder_input_ids=decoder_batch(), use_cache=False).logits
        assert_close(ours(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch()).logits, expected,
                     ATOL, "v4 layout")
    config = loom.T5Config(vocab_size=VOCAB, d_model=24, d_kv=5, d_ff=30, num_layers=1, num_decoder_layers=2,
                           num_heads=3, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                           decoder_start_token_id=START)
    torch.manual_seed(0)
    built = loom.T5ForConditionalGeneration(config).eval()
    assert built.lm_head.weight is not built.shared.weight
    built.save_pretrained(tmp_path / "code")
    ref = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "code")
    assert ref.config.scale_decoder_outputs is False and ref.config.dense_act_fn == "gelu_new"
    with torch.no_grad():
        b = ref(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch(), use_cache=False).logits
        assert_close(built(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch()).logits, b,
                     ATOL, "code-built model in transformers")


def test_old_layout_with_every_tied_copy(saved, tmp_path):
    """transformers 4 wrote the stacks' embeddings, an equal lm_head and the decoder's unused
    cross-attention bias: all load, the copies stay tied, nothing is reported."""
    ref, folder = saved["t5-relu-tied"]
    state = load_file(folder / "model.safetensors")
    for key in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
        state[key] = state["shared.weight"].clone()
    state["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = torch.randn(8, 4)
    (tmp_path / "old").mkdir()
    save_file(state, tmp_path / "old" / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "old" / "config.json").write_text((folder / "config.json").read_text())
    ours = loom.T5ForConditionalGeneration.from_pretrained(tmp_path / "old")
    report = ours.loading_report
    assert report.missing_keys == [] and report.unexpected_keys == [] and report.tied_keys == []
    assert ours.config.tie_word_embeddings and ours.lm_head.weight is ours.shared.weight
    assert ours.encoder.embed_tokens.weight is ours.shared.weight is ours.decoder.embed_tokens.weight
    ids, mask = encoder_batch()
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch()).logits
        b = ref(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch(), use_cache=False).logits
    assert_close(a, b, ATOL, "old layout")


@pytest.mark.parametrize("name", ["t5-relu-tied", "gated-silu-deeper-decoder"])
def test_bfloat16_matches_transformers_bfloat16(saved, name):
    """bf16 rounding follows the reference's order (norms in fp32, cast before the weight).
    (Gated GELU is left out: the reference's tanh-GELU rounds differently from torch's in bf16.)"""
    ours = loom.T5ForConditionalGeneration.from_pretrained(saved[name][1], dtype=torch.bfloat16)
    # both through SDPA (the reference's default): bf16 eager and fused kernels round differently
    ref = transformers.T5ForConditionalGeneration.from_pretrained(saved[name][1], dtype=torch.bfloat16)
    assert ours.dtype == torch.bfloat16 and ours.config.dtype == "bfloat16"
    ids, mask = encoder_batch()
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch()).logits
        b = ref(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch(), use_cache=False).logits
        full = saved[name][0](input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch(),
                              use_cache=False).logits
    assert a.dtype == torch.bfloat16
    assert_close(a, b, 1e-2, "bf16 logits vs the reference's bf16")
    assert max_diff(a, full) > 1e-2  # bf16 really ran


def test_fresh_initialisation_follows_the_original(saved):
    config = loom.T5Config(vocab_size=500, d_model=64, d_kv=16, d_ff=256, num_layers=1, num_heads=4,
                           initializer_factor=1.0)
    torch.manual_seed(0)
    model = loom.T5ForConditionalGeneration(config)
    att = model.encoder.block[0].layer[0].SelfAttention
    ff = model.encoder.block[0].layer[1].DenseReluDense
    for tensor, std in ((model.shared.weight, 1.0), (att.q.weight, (64 * 16) ** -0.5), (att.k.weight, 64**-0.5),
                        (att.o.weight, 64**-0.5), (ff.wi.weight, 64**-0.5), (ff.wo.weight, 256**-0.5),
                        (att.relative_attention_bias.weight, 64**-0.5)):
        assert abs(tensor.std().item() / std - 1) < 0.15, (tuple(tensor.shape), tensor.std().item(), std)
    assert model.lm_head.weight is model.shared.weight


def test_config_round_trip_key_for_key(saved):
    for name in VARIANTS:
        data = json.loads((saved[name][1] / "config.json").read_text())
        config = loom.AutoConfig.from_pretrained(saved[name][1])
        assert isinstance(config, loom.T5Config)
        out = config.to_dict()
        for key, value in data.items():
            if key not in ("dtype", "architectures", "transformers_version"):
                assert out[key] == value, key
        assert config.hidden_size == config.d_model and config.num_hidden_layers == config.num_layers
    gated = loom.T5Config(feed_forward_proj="gated-gelu")
    assert (gated.is_gated_act, gated.dense_act_fn) == (True, "gelu_new")
    relu = gated.replace(feed_forward_proj="relu")  # what follows from the projection follows again
    assert (relu.is_gated_act, relu.dense_act_fn) == (False, "relu")
    assert loom.T5Config(num_layers=3).num_decoder_layers == 3
    assert loom.T5Config(feed_forward_proj="gated-gelu", dense_act_fn="gelu").dense_act_fn == "gelu"


def test_resize_token_embeddings(saved, tmp_path):
    ids, mask = encoder_batch()
    for name in ("t5-relu-tied", "v1.1-gated-gelu-untied"):
        model = load(saved, name)
        with torch.no_grad():
            before = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch()).logits
        model.resize_token_embeddings(VOCAB + 5)
        assert model.shared.num_embeddings == VOCAB + 5 and model.config.vocab_size == VOCAB + 5
        assert model.lm_head.weight.shape == (VOCAB + 5, 32)
        assert model.encoder.embed_tokens is model.shared and model.decoder.embed_tokens is model.shared
        assert (model.lm_head.weight is model.shared.weight) is (name == "t5-relu-tied")
        with torch.no_grad():
            after = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch()).logits
            new_ids = model(input_ids=torch.tensor([[VOCAB + 4, 5]]), decoder_input_ids=torch.tensor([[START]]))
        assert_close(after[..., :VOCAB], before, 1e-6, "old tokens unchanged")
        assert new_ids.logits.shape == (1, 1, VOCAB + 5)
        model.save_pretrained(tmp_path / name)
        ref = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / name)
        with torch.no_grad():
            b = ref(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_batch(), use_cache=False).logits
        assert_close(after, b, ATOL, f"{name}: resized model in transformers")


def test_auto_classes(saved):
    folder = saved["t5-relu-tied"][1]
    assert type(loom.AutoModelForSeq2SeqLM.from_pretrained(folder)).__name__ == "T5ForConditionalGeneration"
    assert type(loom.AutoModel.from_pretrained(folder)).__name__ == "T5Model"
    model = loom.AutoModelForSeq2SeqLM.from_pretrained(folder)
    assert model.main_input_name == "input_ids" and model.config.is_encoder_decoder
    assert model.config.position_limit is None and model.get_encoder() is model.encoder


# -- caching and generation -----------------------------------------------------------------

@pytest.mark.parametrize("name", VARIANTS)
def test_cached_decode_equals_full_forward(saved, name):
    """Including 3 decoder layers over a 2-layer encoder, where the reference's cache fails."""
    model = load(saved, name)
    ids, mask = encoder_batch()
    dec = decoder_batch(T=14)
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        enc = model.get_encoder()(input_ids=ids, attention_mask=mask)
        out = model(encoder_outputs=enc, attention_mask=mask, decoder_input_ids=dec[:, :5], use_cache=True)
        cache = out.past_key_values
        assert isinstance(cache, EncoderDecoderCache) and cache.get_seq_length() == 5
        assert cache.cross(model.config.num_decoder_layers - 1)[0].shape == (3, 4, 30, model.config.d_kv)
        steps = [out.logits]
        for t in range(5, 14):
            out = model(encoder_outputs=(enc.last_hidden_state,), attention_mask=mask, decoder_input_ids=dec[:, t:t + 1],
                        past_key_values=cache, use_cache=True, logits_to_keep=1)
            steps.append(out.logits)
    assert cache.get_seq_length() == 14
    assert_close(torch.cat(steps, dim=1), full, ATOL, "cached decode vs full forward")
    ref = saved[name][0]
    with torch.no_grad():
        b = ref(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, use_cache=False).logits
    assert_close(full, b, ATOL, "full forward vs reference")


def test_cache_with_decoder_attention_mask(saved):
    model = load(saved, "t5-relu-tied")
    ids, mask = encoder_batch()
    dec = decoder_batch(T=8)
    dec_mask = torch.ones_like(dec)
    dec_mask[1, 2] = 0
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, decoder_attention_mask=dec_mask).logits
        out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec[:, :4],
                    decoder_attention_mask=dec_mask[:, :4], use_cache=True)
        cache, steps = out.past_key_values, [out.logits]
        for t in range(4, 8):
            out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec[:, t:t + 1], past_key_values=cache,
                        decoder_attention_mask=dec_mask[:, :t + 1])
            steps.append(out.logits)
        with pytest.raises(InputError, match=r"decoder_attention_mask must have shape \(3, 9\)"):
            model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec[:, :1], past_key_values=cache,
                  decoder_attention_mask=dec_mask)
    real = dec_mask.bool()
    assert_close(torch.cat(steps, dim=1)[real], full[real], ATOL, "cached decode with a decoder mask")


@pytest.mark.parametrize("name", ["t5-relu-tied", "v1.1-gated-gelu-untied"])
@pytest.mark.parametrize("kw", [dict(), dict(num_beams=3), dict(num_beams=3, num_return_sequences=2, length_penalty=0.6),
                                dict(repetition_penalty=1.3, no_repeat_ngram_size=2)])
def test_generate_equals_transformers(saved, name, kw):
    ours, ref = load(saved, name), saved[name][0]
    ids, mask = encoder_batch()
    a = ours.generate(ids, attention_mask=mask, max_new_tokens=12, **kw)
    b = ref.generate(ids, attention_mask=mask, max_new_tokens=12, **kw)
    assert a.shape == b.shape and torch.equal(a, b), (a, b)
    assert a[:, 0].eq(START).all() and len(set(a[:, 1:].flatten().tolist())) >= 3  # not a degenerate run


def test_generate_with_decoder_prompt_and_eos(saved):
    ours, ref = load(saved, "v1.1-gated-gelu-untied"), saved["v1.1-gated-gelu-untied"][0]
    ids, mask = encoder_batch()
    prompt = decoder_batch(T=3)
    a = ours.generate(ids, attention_mask=mask, decoder_input_ids=prompt, max_new_tokens=10)
    b = ref.generate(ids, attention_mask=mask, decoder_input_ids=prompt, max_new_tokens=10)
    assert torch.equal(a, b) and torch.equal(a[:, :3], prompt)
    with torch.no_grad():  # pick a token the model is sure to emit early, and make it eos
        first = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=prompt).logits[:, -1].argmax(-1)
    eos = int(first[1])
    a = ours.generate(ids, attention_mask=mask, decoder_input_ids=prompt, max_new_tokens=10, eos_token_id=eos)
    b = ref.generate(ids, attention_mask=mask, decoder_input_ids=prompt, max_new_tokens=10, eos_token_id=eos)
    assert torch.equal(a, b) and a[1, 3] == eos


def test_generate_deeper_decoder_cached_equals_uncached(saved):
    """The reference cannot generate with num_decoder_layers != num_layers; loom's cached
    decoding must equal decoding without a cache."""
    model = load(saved, "gated-silu-deeper-decoder")
    ids, mask = encoder_batch()
    for kw in (dict(), dict(num_beams=2)):
        cached = model.generate(ids, attention_mask=mask, max_new_tokens=10, **kw)
        uncached = model.generate(ids, attention_mask=mask, max_new_tokens=10, use_cache=False, **kw)
        assert torch.equal(cached, uncached)
    with pytest.raises(IndexError):  # the reference bug this guards against, still there
        saved["gated-silu-deeper-decoder"][0].generate(ids, attention_mask=mask, max_new_tokens=3)


# -- bad input ------------------------------------------------------------------------------

def test_bad_input_raises(saved):
    model = load(saved, "t5-relu-tied")
    ids, mask = encoder_batch()
    dec = decoder_batch()
    cases = [
        (dict(input_ids=ids[None], decoder_input_ids=dec), r"input_ids must have shape \(batch, tokens\)"),
        (dict(input_ids=ids, attention_mask=mask[:, :10], decoder_input_ids=dec), r"attention_mask must have shape \(3, 30\)"),
        (dict(input_ids=ids, decoder_input_ids=dec, decoder_attention_mask=torch.ones(3, 7)),
         r"decoder_attention_mask must have shape \(3, 25\)"),
        (dict(input_ids=ids, decoder_input_ids=dec[:2]), r"encoder hidden states must have shape \(2, tokens, 32\)"),
        (dict(input_ids=ids), "needs decoder_input_ids"),
        (dict(input_ids=ids + VOCAB, decoder_input_ids=dec), r"input_ids must be in \[0, 99\)"),
        (dict(input_ids=ids, decoder_input_ids=dec, past_key_values=DynamicCache()), "must be an EncoderDecoderCache"),
        (dict(encoder_outputs=torch.zeros(3, 30, 32), decoder_input_ids=dec), "encoder_outputs must be a BaseModelOutput"),
        (dict(input_ids=ids, decoder_input_ids=dec, head_mask=torch.ones(3, 4)), r"head_mask must have shape"),
        (dict(input_ids=ids, labels=dec, logits_to_keep=1), "logits_to_keep"),
    ]
    for kwargs, match in cases:
        with pytest.raises(InputError, match=match):
            model(**kwargs)
    with pytest.raises(InputError, match="takes no past_key_values"):
        model.get_encoder()(input_ids=ids, past_key_values=EncoderDecoderCache())
    model.config.decoder_start_token_id = None
    with pytest.raises(ConfigError, match="decoder_start_token_id"):
        model(input_ids=ids, labels=dec)
    enc = model.get_encoder()(input_ids=ids)
    assert isinstance(enc, BaseModelOutput)


def test_bad_config_raises():
    for kwargs, match in [
        (dict(feed_forward_proj="gated-gelu-x"), "feed_forward_proj must be 'ACT' or 'gated-ACT'"),
        (dict(feed_forward_proj="fancy-relu"), "feed_forward_proj must be"),
        (dict(feed_forward_proj="gated-swishy"), "dense_act_fn='swishy'"),
        (dict(feed_forward_proj="relu", is_gated_act=True), "contradicts feed_forward_proj"),
        (dict(num_heads=0), "num_heads must be positive"),
        (dict(num_decoder_layers=0), "num_decoder_layers must be positive"),
        (dict(vocab_size=10, decoder_start_token_id=10), "decoder_start_token_id=10 is outside"),
        (dict(d_model="512"), "d_model expects int"),
    ]:
        with pytest.raises(ConfigError, match=match):
            loom.T5Config(**kwargs)
