"""ViT against the reference `transformers` implementation on tiny random models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file

import loom
from tests.helpers import (
    assert_close,
    check_head_mask_equals_pruning,
    check_parity,
    check_save_load,
    max_diff,
)

HEADS = ["ViTModel", "ViTForImageClassification"]
SHAPES = {
    "h32-l2-a4-p8": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                         image_size=32, patch_size=8),
    "h24-l3-a3-nobias-tanhgelu": dict(hidden_size=24, num_hidden_layers=3, num_attention_heads=3,
                                      intermediate_size=20, image_size=30, patch_size=6, qkv_bias=False,
                                      hidden_act="gelu_new", layer_norm_eps=1e-6, pooler_output_size=16,
                                      pooler_act="relu"),
    "h16-l1-a2-rect-gray": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                image_size=[16, 24], patch_size=4, num_channels=1),
}


def hf_config(**kw):
    base = dict(attn_implementation="eager", num_labels=3)
    base.update(kw)
    return transformers.ViTConfig(**base)


def make_pair(tmp_path, name: str, seed: int = 0, **cfg):
    torch.manual_seed(seed)
    hf = getattr(transformers, name)(hf_config(**cfg)).eval()
    folder = tmp_path / f"hf-{name}"
    hf.save_pretrained(folder)
    return getattr(loom, name).from_pretrained(folder), hf, folder


def pixels(cfg: dict, B: int = 3, seed: int = 1, size=None) -> dict:
    image = cfg.get("image_size", 224)
    h, w = size or ((image, image) if isinstance(image, int) else image)
    g = torch.Generator().manual_seed(seed)
    return dict(pixel_values=torch.randn(B, cfg.get("num_channels", 3), h, w, generator=g))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", HEADS)
def test_parity_every_head(tmp_path, name, shape):
    ours, ref, _ = make_pair(tmp_path, name, **SHAPES[shape])
    assert ours.loading_report.missing_keys == [] and ours.loading_report.unexpected_keys == []
    check_parity(ours, ref, pixels(SHAPES[shape]))


@pytest.mark.parametrize("name", HEADS)
def test_interpolate_pos_encoding_matches_reference(tmp_path, name):
    cfg = SHAPES["h32-l2-a4-p8"]
    ours, ref, _ = make_pair(tmp_path, name, **cfg)
    for size in ((48, 48), (64, 40), (24, 24)):
        inputs = {**pixels(cfg, B=2, size=size), "interpolate_pos_encoding": True}
        check_parity(ours, ref, inputs)
        T = (size[0] // 8) * (size[1] // 8) + 1
        with torch.no_grad():
            assert ours(**inputs, output_hidden_states=True).hidden_states[0].shape == (2, T, 32)
    with pytest.raises(loom.InputError, match="48x48.*trained on 32x32.*interpolate_pos_encoding=True"):
        ours(**pixels(cfg, size=(48, 48)))
    with torch.no_grad():  # at the trained size the flag changes nothing
        a = ours(**pixels(cfg), interpolate_pos_encoding=True).to_tuple()[0]
        b = ours(**pixels(cfg)).to_tuple()[0]
    assert max_diff(a, b) == 0.0


def test_mask_token_matches_reference(tmp_path):
    cfg = SHAPES["h32-l2-a4-p8"]
    torch.manual_seed(0)
    ref = transformers.ViTModel(hf_config(**cfg), use_mask_token=True).eval()
    ref.save_pretrained(tmp_path / "mim")
    ours = loom.ViTModel(loom.ViTConfig.from_pretrained(tmp_path / "mim"), use_mask_token=True).eval()
    state = load_file(tmp_path / "mim" / "model.safetensors")
    assert "embeddings.mask_token" in state
    assert set(ours.state_dict()) == set(state)
    ours.load_state_dict(state)
    masked = torch.zeros(3, 16, dtype=torch.bool)
    masked[:, ::3] = True
    inputs = {**pixels(cfg), "bool_masked_pos": masked}
    check_parity(ours, ref, inputs)
    with pytest.raises(loom.InputError, match="use_mask_token=True"):
        loom.ViTModel.from_pretrained(tmp_path / "mim")(**inputs)


def test_classification_losses_and_gradients_match(tmp_path):
    ours, ref, _ = make_pair(tmp_path, "ViTForImageClassification", **SHAPES["h32-l2-a4-p8"])
    inputs = {**pixels(SHAPES["h32-l2-a4-p8"]), "labels": torch.tensor([0, 2, 1])}
    a, b = ours(**inputs).loss, ref(**inputs).loss
    assert_close(a, b, what="loss")
    a.backward()
    b.backward()
    ours_params = dict(ours.named_parameters())
    for pname, p in ref.named_parameters():  # transformers 5 renames in memory; compare the shared ones
        if pname in ours_params:
            assert_close(ours_params[pname].grad, p.grad, 1e-5, pname)
    assert_close(ours.vit.encoder.layer[1].attention.attention.query.weight.grad,
                 ref.vit.layers[1].attention.q_proj.weight.grad, 1e-5, "query grad")
    for problem_type, labels in (("regression", torch.randn(3, 3)),
                                 ("multi_label_classification", torch.tensor([[1.0, 0, 1], [0, 0, 0], [1, 1, 1]]))):
        ours.config.problem_type = ref.config.problem_type = problem_type
        with torch.no_grad():
            assert_close(ours(**{**inputs, "labels": labels}).loss, ref(**{**inputs, "labels": labels}).loss,
                         what=problem_type)


def test_head_mask_matches_scaled_values_in_reference(tmp_path):
    """head_mask multiplies a head's probabilities; the reference ignores head_mask, so the
    expectation scales that head's value projection by the same factor there."""
    cfg = SHAPES["h32-l2-a4-p8"]
    ours, ref, _ = make_pair(tmp_path, "ViTForImageClassification", **cfg)
    torch.manual_seed(3)
    mask = torch.rand(2, 4)
    mask[0, 1] = 0.0
    D = 8
    with torch.no_grad():
        for layer in range(2):
            value = ref.vit.layers[layer].attention.v_proj
            for h in range(4):
                value.weight[h * D:(h + 1) * D] *= mask[layer, h]
                value.bias[h * D:(h + 1) * D] *= mask[layer, h]
        inputs = pixels(cfg)
        out = ours(**inputs, head_mask=mask, output_attentions=True, output_hidden_states=True)
        exp = ref(**inputs, output_hidden_states=True)
    assert_close(out.logits, exp.logits, what="logits")
    assert_close(out.hidden_states, exp.hidden_states, what="hidden_states")
    assert out.attentions[0][:, 1].abs().max() == 0
    with pytest.raises(loom.InputError, match="head_mask"):
        ours(**inputs, head_mask=torch.ones(3))


def test_pruning_equals_zero_head_mask_and_survives_save(tmp_path):
    cfg = SHAPES["h32-l2-a4-p8"]
    _, _, folder = make_pair(tmp_path, "ViTForImageClassification", **cfg)
    inputs = pixels(cfg)
    factory = lambda: loom.ViTForImageClassification.from_pretrained(folder)  # noqa: E731
    check_head_mask_equals_pruning(factory, inputs, layer=1, heads=[0, 2], num_layers=2, num_heads=4)
    model = factory()
    model.prune_heads({0: [3], 1: [0, 2]})
    assert model.config.pruned_heads == {0: [3], 1: [0, 2]}
    assert model.vit.encoder.layer[1].attention.attention.query.out_features == 16
    mask = torch.ones(2, 4)
    mask[0, 3] = 0
    mask[1, [0, 2]] = 0
    with torch.no_grad():
        expected = factory()(**inputs, head_mask=mask).logits
        attn = model(**inputs, output_attentions=True).attentions
        got = model(**inputs).logits
    assert_close(got, expected, what="pruned vs masked")
    assert attn[0].shape[1] == 3 and attn[1].shape[1] == 2
    reloaded = check_save_load(model, tmp_path, inputs)
    assert reloaded.config.pruned_heads == {0: [3], 1: [0, 2]}
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["pruned_heads"] == {"0": [3], "1": [0, 2]}


@pytest.mark.parametrize("name", HEADS)
def test_loom_saves_what_transformers_loads(tmp_path, name):
    cfg = SHAPES["h24-l3-a3-nobias-tanhgelu"]
    ours, ref, folder = make_pair(tmp_path, name, **cfg)
    out = tmp_path / "loom-saved"
    ours.save_pretrained(out)
    with safe_open(out / "model.safetensors", "pt") as f, safe_open(folder / "model.safetensors", "pt") as g:
        assert sorted(f.keys()) == sorted(g.keys())  # the Hub names, as transformers writes them
    back = getattr(transformers, name).from_pretrained(out, attn_implementation="eager").eval()
    check_parity(ours, back, pixels(cfg))
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == [name] and config["model_type"] == "vit"
    assert config["pooler_output_size"] == 16 and config["qkv_bias"] is False


def test_base_from_head_checkpoint_and_head_from_base(tmp_path):
    cfg = SHAPES["h32-l2-a4-p8"]
    _, ref_clf, clf_folder = make_pair(tmp_path, "ViTForImageClassification", **cfg)
    base = loom.ViTModel.from_pretrained(clf_folder)
    assert sorted(base.loading_report.unexpected_keys) == ["classifier.bias", "classifier.weight"]
    assert sorted(base.loading_report.missing_keys) == ["pooler.dense.bias", "pooler.dense.weight"]
    inputs = pixels(cfg)
    with torch.no_grad():
        assert_close(base(**inputs).last_hidden_state, ref_clf.vit(**inputs).last_hidden_state)
    _, ref, base_folder = make_pair(tmp_path, "ViTModel", **cfg)
    clf = loom.AutoModelForImageClassification.from_pretrained(base_folder, num_labels=5)
    assert type(clf) is loom.ViTForImageClassification
    assert sorted(clf.loading_report.missing_keys) == ["classifier.bias", "classifier.weight"]
    assert clf.loading_report.unexpected_keys == []  # the pooler is dropped silently
    assert clf.classifier.weight.shape == (5, 32) and clf.classifier.bias.abs().max() == 0
    with torch.no_grad():
        assert_close(clf.vit(**inputs).last_hidden_state, ref(**inputs).last_hidden_state)


def test_auto_classes_and_bad_input(tmp_path):
    cfg = SHAPES["h32-l2-a4-p8"]
    _, _, folder = make_pair(tmp_path, "ViTForImageClassification", **cfg)
    assert type(loom.AutoModel.from_pretrained(folder)) is loom.ViTModel
    assert type(loom.AutoModelForImageClassification.from_pretrained(folder)) is loom.ViTForImageClassification
    assert isinstance(loom.AutoConfig.from_pretrained(folder), loom.ViTConfig)
    with pytest.raises(loom.ConfigError, match="no 'masked-lm' model"):
        loom.AutoModelForMaskedLM.from_pretrained(folder)
    model = loom.ViTModel.from_pretrained(folder)
    for bad, message in ((None, "pixel_values is required"), (np.zeros((1, 3, 32, 32)), "torch tensor"),
                         (torch.zeros(3, 32, 32), "shape \\(batch, 3, height, width\\)"),
                         (torch.zeros(1, 4, 32, 32), "shape \\(batch, 3, height, width\\)")):
        with pytest.raises(loom.InputError, match=message):
            model(pixel_values=bad)
    for kwargs, message in ((dict(hidden_size=30, num_attention_heads=4), "not divisible"),
                            (dict(image_size=8, patch_size=16), "smaller than patch_size"),
                            (dict(patch_size=[4, 4, 4]), "patch_size"),
                            (dict(hidden_act="swiglu"), "hidden_act")):
        with pytest.raises(loom.ConfigError, match=message):
            loom.ViTConfig(**kwargs)


def test_processor_and_model_end_to_end(tmp_path):
    """Pixels from the loom image processor into the model equal the reference pipeline's."""
    from PIL import Image
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    cfg = SHAPES["h32-l2-a4-p8"]
    ours, ref, _ = make_pair(tmp_path, "ViTForImageClassification", **cfg)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((50, 70), (90, 40))]
    a = loom.ViTImageProcessor(size={"height": 32, "width": 32})(images, return_tensors="pt")
    b = ViTImageProcessorPil(size={"height": 32, "width": 32})(images, return_tensors="pt")
    with torch.no_grad():
        assert_close(ours(**a).logits, ref(**b).logits)


def test_trains_on_digits():
    """A small ViT built from a config learns scikit-learn's 8x8 digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images[:256], dtype=torch.float32).unsqueeze(1) / 16.0  # (B, 1, 8, 8)
    y = torch.tensor(digits.target[:256])
    torch.manual_seed(0)
    cfg = loom.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                         image_size=8, patch_size=2, num_channels=1, num_labels=10)
    model = loom.ViTForImageClassification(cfg).train()
    assert not any(p.is_meta for p in model.parameters())
    assert model.vit.embeddings.cls_token.abs().max() > 0  # initialised, not left at zero
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for step in range(60):
        idx = torch.arange(step * 32, step * 32 + 32) % 256
        loss = model(pixel_values=x[idx], labels=y[idx]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
