"""Whisper models against the reference `transformers` implementation on tiny random models:
forward parity (logits, hidden states, self and cross attentions), loss, cached decoding,
head masks and pruning, round trips, input checks."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors.torch import load_file

import loom
from loom.errors import ConfigError, InputError
from loom.modeling.outputs import BaseModelOutput
from loom.nn.cache import EncoderDecoderCache
from tests.helpers import assert_close, check_head_mask_equals_pruning, check_save_load, max_diff
from tests.models.whisper.tiny import EOS, MEL, START, VOCAB, decoder_ids, features, make_pair, reference_config

ATOL = 1e-4
FIELDS = ("logits", "encoder_last_hidden_state", "encoder_hidden_states", "decoder_hidden_states",
          "encoder_attentions", "decoder_attentions", "cross_attentions")


def both(ours, ref, **inputs):
    flags = dict(output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        return ours(**inputs, **flags), ref(**inputs, **flags)


@pytest.mark.parametrize("std", [0.02, 1.0])
def test_forward_parity(tmp_path, std):
    ours, ref, _ = make_pair(tmp_path, std=std)
    assert ours.loading_report.missing_keys == [] and ours.loading_report.unexpected_keys == []
    a, b = both(ours, ref, input_features=features(), decoder_input_ids=decoder_ids())
    for name in FIELDS:
        assert_close(a[name], b[name], ATOL, name)
    assert len(a.encoder_hidden_states) == 3 and len(a.decoder_hidden_states) == 3
    assert a.encoder_attentions[0].shape == (2, 4, 50, 50)
    assert a.decoder_attentions[0].shape == (2, 4, 7, 7) and a.cross_attentions[0].shape == (2, 4, 7, 50)
    assert a.past_key_values is None  # no cache unless asked for


def test_base_model_and_padded_decoder_parity(tmp_path):
    ours, ref, _ = make_pair(tmp_path, cls="WhisperModel")
    ids = decoder_ids(T=9)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0  # right-padded labels, as in training batches
    a, b = both(ours, ref, input_features=features(), decoder_input_ids=ids, decoder_attention_mask=mask)
    assert_close(a.last_hidden_state, b.last_hidden_state, ATOL, "last_hidden_state")
    assert_close(a.decoder_attentions, b.decoder_attentions, ATOL, "masked self-attention")
    assert float(a.decoder_attentions[0][0, :, 8, 6:].abs().max()) == 0.0  # padded keys get no weight
    assert_close(a.encoder_last_hidden_state, b.encoder_last_hidden_state, ATOL, "encoder")


def test_loss_with_labels(tmp_path):
    ours, ref, _ = make_pair(tmp_path)
    labels = decoder_ids(T=8)[:, 1:]
    labels[1, 5:] = -100
    with torch.no_grad():
        a = ours(input_features=features(), labels=labels)
        b = ref(input_features=features(), labels=labels)
    assert_close(a.logits, b.logits, ATOL, "logits from shifted labels")
    assert_close(a.loss, b.loss, ATOL, "loss")
    shifted = torch.cat([torch.full((2, 1), START), labels[:, :-1]], dim=1).masked_fill(
        torch.cat([torch.zeros(2, 1, dtype=torch.bool), labels[:, :-1] == -100], dim=1), EOS)
    with torch.no_grad():
        explicit = ours(input_features=features(), decoder_input_ids=shifted).logits
    assert max_diff(explicit, a.logits) == 0.0
    kept = labels != -100
    manual = torch.nn.functional.cross_entropy(a.logits[kept], labels[kept])
    assert_close(a.loss, manual, 1e-6, "loss = mean cross-entropy over kept labels")
    ours.train()
    ours(input_features=features(), labels=labels).loss.backward()
    assert ours.model.encoder.conv1.weight.grad is not None
    assert ours.model.encoder.embed_positions.weight.grad is None  # the sinusoids are frozen


def test_cached_decoding_equals_full_forward(tmp_path):
    ours, _, _ = make_pair(tmp_path)
    ids = decoder_ids(T=10)
    with torch.no_grad():
        full = ours(input_features=features(), decoder_input_ids=ids).logits
        out = ours(input_features=features(), decoder_input_ids=ids[:, :4], use_cache=True)
        cache, steps = out.past_key_values, [out.logits]
        assert isinstance(cache, EncoderDecoderCache) and cache.get_seq_length() == 4
        encoder = (out.encoder_last_hidden_state,)  # a tuple works as encoder_outputs
        for t in range(4, 10):
            step = ours(encoder_outputs=encoder, decoder_input_ids=ids[:, t:t + 1], past_key_values=cache,
                        use_cache=True, logits_to_keep=1)
            steps.append(step.logits)
    assert cache.get_seq_length() == 10
    assert_close(torch.cat(steps, dim=1), full, 1e-5, "cached decode vs full forward")
    # cross-attention keys and values are computed once, then reused: a changed encoder output is ignored
    with torch.no_grad():
        again = ours(encoder_outputs=(encoder[0] * 0,), decoder_input_ids=ids[:, :1], past_key_values=cache)
        fresh = ours(encoder_outputs=(encoder[0] * 0,), decoder_input_ids=ids[:, :1])
    assert max_diff(again.logits, fresh.logits) > 1e-3


def test_encoder_contract_and_logits_to_keep(tmp_path):
    ours, _, _ = make_pair(tmp_path)
    encoder = ours.get_encoder()
    assert encoder is ours.model.encoder
    with torch.no_grad():
        enc = encoder(input_features=features(), attention_mask=None, head_mask=None, output_attentions=False,
                      output_hidden_states=False, return_dict=True)
        assert isinstance(enc, BaseModelOutput) and enc.hidden_states is None
        full = ours(input_features=features(), decoder_input_ids=decoder_ids())
        reused = ours(encoder_outputs=enc, decoder_input_ids=decoder_ids(), logits_to_keep=2)
    assert max_diff(full.encoder_last_hidden_state, enc.last_hidden_state) == 0.0
    assert reused.logits.shape == (2, 2, VOCAB)
    assert_close(reused.logits, full.logits[:, -2:], 1e-6, "logits_to_keep")
    with torch.no_grad():
        embeds = ours.get_input_embeddings()(decoder_ids())
        by_embeds = ours(encoder_outputs=enc, decoder_inputs_embeds=embeds)
    assert_close(by_embeds.logits, full.logits, 1e-6, "decoder_inputs_embeds")
    with pytest.raises(InputError, match="exactly one of input_ids and inputs_embeds"):
        ours(encoder_outputs=enc, decoder_input_ids=decoder_ids(), decoder_inputs_embeds=embeds)


def test_head_masks(tmp_path):
    _, _, folder = make_pair(tmp_path)
    inputs = {"input_features": features(), "decoder_input_ids": decoder_ids()}
    check_head_mask_equals_pruning(lambda: loom.WhisperForConditionalGeneration.from_pretrained(folder), inputs,
                                   layer=1, heads=[0, 3], num_layers=2, num_heads=4)
    # Silencing decoder head h of layer l equals zeroing the inputs of out_proj that head feeds.
    for arg, attn in (("decoder_head_mask", "self_attn"), ("cross_attn_head_mask", "encoder_attn")):
        masked = loom.WhisperForConditionalGeneration.from_pretrained(folder)
        edited = loom.WhisperForConditionalGeneration.from_pretrained(folder)
        mask = torch.ones(2, 4)
        mask[1, 2] = 0.0
        with torch.no_grad():
            getattr(edited.model.decoder.layers[1], attn).out_proj.weight[:, 8:12] = 0.0
            a = masked(**inputs, **{arg: mask}, output_attentions=True)
            b = edited(**inputs)
            plain = masked(**inputs).logits
        assert_close(a.logits, b.logits, 1e-5, arg)
        assert max_diff(a.logits, plain) > 1e-3, f"{arg} changed nothing"
        weights = a.decoder_attentions if attn == "self_attn" else a.cross_attentions
        assert float(weights[1][:, 2].abs().max()) == 0.0
    with pytest.raises(InputError, match=r"head_mask must have shape \(4,\) or \(2, 4\)"):
        masked(**inputs, decoder_head_mask=torch.ones(3, 4))


def test_pruning_survives_save_load_both_ways(tmp_path):
    ours, _, _ = make_pair(tmp_path)
    inputs = {"input_features": features(), "decoder_input_ids": decoder_ids()}
    ours.prune_heads({0: [1], 1: [0, 2]})
    ours.prune_heads({0: [3]})
    assert ours.config.pruned_heads == {0: [1, 3], 1: [0, 2]}
    assert ours.model.encoder.layers[0].self_attn.k_proj.weight.shape == (8, 16)
    again = check_save_load(ours, tmp_path, inputs)
    assert again.config.pruned_heads == {0: [1, 3], 1: [0, 2]}
    with pytest.raises(InputError, match="encoder layer 5"):
        ours.prune_heads({5: [0]})


def test_save_load_both_ways(tmp_path):
    ours, ref, folder = make_pair(tmp_path)
    inputs = {"input_features": features(), "decoder_input_ids": decoder_ids()}
    ours.save_pretrained(tmp_path / "loom")
    saved = load_file(tmp_path / "loom" / "model.safetensors")
    assert "proj_out.weight" not in saved  # tied: written once, as the reference
    assert {"model.encoder.conv1.weight", "model.encoder.embed_positions.weight",
            "model.decoder.layers.0.encoder_attn.k_proj.weight"} <= set(saved)
    assert "model.decoder.layers.0.encoder_attn.k_proj.bias" not in saved
    back = transformers.WhisperForConditionalGeneration.from_pretrained(tmp_path / "loom", attn_implementation="eager")
    with torch.no_grad():
        assert_close(back(**inputs).logits, ref(**inputs).logits, 0.0, "transformers reads loom's save")
    config = json.loads((tmp_path / "loom" / "config.json").read_text())
    assert config["is_encoder_decoder"] is True and config["model_type"] == "whisper"
    assert config["architectures"] == ["WhisperForConditionalGeneration"]
    assert ours.model.decoder.embed_tokens.weight is ours.proj_out.weight
    base = loom.WhisperModel.from_pretrained(folder)  # a head checkpoint loads into the base model
    with torch.no_grad():
        assert_close(base(**inputs).last_hidden_state, ref.model(**inputs).last_hidden_state, ATOL, "base")


def test_missing_encoder_positions_are_sinusoids(tmp_path):
    _, ref, folder = make_pair(tmp_path)
    state = load_file(folder / "model.safetensors")
    del state["model.encoder.embed_positions.weight"]
    from safetensors.torch import save_file
    save_file(state, folder / "model.safetensors")
    ours = loom.WhisperForConditionalGeneration.from_pretrained(folder)
    assert ours.loading_report.missing_keys == ["model.encoder.embed_positions.weight"]
    assert_close(ours.model.encoder.embed_positions.weight, ref.model.encoder.embed_positions.weight, 1e-6,
                 "sinusoidal positions")


def test_resize_token_embeddings(tmp_path):
    ours, _, _ = make_pair(tmp_path)
    inputs = {"input_features": features(), "decoder_input_ids": decoder_ids()}
    with torch.no_grad():
        before = ours(**inputs).logits
    ours.resize_token_embeddings(VOCAB + 4)
    assert ours.proj_out.weight is ours.model.decoder.embed_tokens.weight
    assert ours.config.vocab_size == VOCAB + 4
    with torch.no_grad():
        after = ours(**inputs).logits
    assert after.shape[-1] == VOCAB + 4 and max_diff(after[..., :VOCAB], before) == 0.0


def test_input_checks(tmp_path):
    ours, _, _ = make_pair(tmp_path)
    with pytest.raises(InputError, match="num_mel_bins=8 and 100 frames.*found 6 mel bins and 100 frames"):
        ours(input_features=torch.randn(1, 6, 100), decoder_input_ids=decoder_ids(B=1))
    with pytest.raises(InputError, match="found 8 mel bins and 90 frames"):
        ours(input_features=torch.randn(1, MEL, 90), decoder_input_ids=decoder_ids(B=1))
    with pytest.raises(InputError, match="pass input_features .* or encoder_outputs"):
        ours(decoder_input_ids=decoder_ids())
    with pytest.raises(InputError, match="max_target_positions=40"):
        ours(input_features=features(), decoder_input_ids=torch.full((2, 41), 3))
    out = ours(input_features=features(), decoder_input_ids=torch.full((2, 38), 3), use_cache=True)
    with pytest.raises(InputError, match="38 cached"):
        ours(encoder_outputs=(out.encoder_last_hidden_state,), decoder_input_ids=torch.full((2, 3), 3),
             past_key_values=out.past_key_values)
    with pytest.raises(InputError, match="labels have 41 tokens"):
        ours(input_features=features(), labels=torch.full((2, 41), 3))
    with pytest.raises(InputError, match=r"input_ids must be in \[0, 100\)"):
        ours(input_features=features(), decoder_input_ids=torch.full((2, 3), 100))


def test_config_round_trip_and_checks(tmp_path):
    ref_config = reference_config(scale_embedding=True, suppress_tokens=[1, 2])
    ref_config.save_pretrained(tmp_path)
    config = loom.AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, loom.WhisperConfig)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (16, 2, 4)
    assert config.is_encoder_decoder and config.position_limit == 40 and config.num_frames == 100
    written = config.to_dict()
    original = json.loads((tmp_path / "config.json").read_text())
    assert {k: written[k] for k in original if k not in ("transformers_version", "dtype")} == \
        {k: v for k, v in original.items() if k not in ("transformers_version", "dtype")}
    config.save_pretrained(tmp_path / "loom")
    back = transformers.WhisperConfig.from_pretrained(tmp_path / "loom").to_dict()
    assert {k: back[k] for k in original if k != "transformers_version"} == \
        {k: v for k, v in original.items() if k != "transformers_version"}
    assert loom.WhisperConfig().begin_suppress_tokens == [220, 50256]
    with pytest.raises(ConfigError, match="decoder_start_token_id=50257 is outside the vocabulary"):
        loom.WhisperConfig(vocab_size=100, pad_token_id=0, bos_token_id=0, eos_token_id=0)
    with pytest.raises(ConfigError, match="d_model=30 is not divisible by decoder_attention_heads=4"):
        loom.WhisperConfig(d_model=30, encoder_attention_heads=5, decoder_attention_heads=4)
    assert loom.AutoModelForSpeechSeq2Seq.model_class(config) is loom.WhisperForConditionalGeneration
    assert loom.AutoModel.model_class(config) is loom.WhisperModel


def test_auto_loading_and_scale_embedding_has_no_effect(tmp_path):
    _, ref, folder = make_pair(tmp_path, scale_embedding=True)
    ours = loom.AutoModelForSpeechSeq2Seq.from_pretrained(folder)
    assert type(ours) is loom.WhisperForConditionalGeneration
    inputs = {"input_features": features(), "decoder_input_ids": decoder_ids()}
    with torch.no_grad():
        assert_close(ours(**inputs).logits, ref(**inputs).logits, ATOL, "scale_embedding=True")


def test_spec_augment_in_training_only(tmp_path):
    from loom.models.whisper.modeling import span_mask

    torch.manual_seed(0)
    mask = span_mask(4, 100, 0.3, 10, 2)
    assert mask.shape == (4, 100) and bool((mask.sum(1) >= 10).all()) and bool((mask.sum(1) <= 40).all())
    assert not span_mask(2, 100, 0.0, 10, 0).any() and span_mask(2, 8, 1.0, 8, 0).all()
    ours, _, folder = make_pair(tmp_path, apply_spec_augment=True, mask_time_prob=0.0, mask_feature_prob=1.0,
                                mask_feature_length=MEL)  # one span covers every mel bin: the input is all zeros
    inputs = {"decoder_input_ids": decoder_ids()}
    x = features()
    with torch.no_grad():
        evaluated = ours(input_features=x, **inputs).logits
        silent = ours(input_features=torch.zeros_like(x), **inputs).logits
        augmented = ours.train()(input_features=x, **inputs).logits
    assert max_diff(evaluated, silent) > 1e-3
    assert_close(augmented, silent, 1e-6, "training with SpecAugment")
    assert max_diff(x, features()) == 0.0  # the caller's features are left alone
    with pytest.raises(InputError, match="span of 10 does not fit an axis of 8"):
        span_mask(1, 8, 0.5, 10, 0)
