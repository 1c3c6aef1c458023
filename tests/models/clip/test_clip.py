"""CLIP against the reference `transformers` implementation on tiny random models: the pair,
each tower with and without projection, zero-shot probabilities, files both ways."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

import loom
from tests.helpers import assert_close, check_head_mask_equals_pruning, check_parity, check_save_load, max_diff
from tests.preprocessing.test_processor import tiny_clip_tokenizer

VOCAB = 99
TEXT = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=24, projection_dim=16, bos_token_id=97, eos_token_id=98, pad_token_id=1)
VISION = dict(hidden_size=24, intermediate_size=40, num_hidden_layers=3, num_attention_heads=3, image_size=30,
              patch_size=6, projection_dim=16)
TOWERS = {
    "CLIPTextModel": ("text", transformers.CLIPTextConfig),
    "CLIPTextModelWithProjection": ("text", transformers.CLIPTextConfig),
    "CLIPVisionModel": ("vision", transformers.CLIPVisionConfig),
    "CLIPVisionModelWithProjection": ("vision", transformers.CLIPVisionConfig),
}


def hf_clip_config(text=None, vision=None, **kw):
    return transformers.CLIPConfig(text_config={**TEXT, **(text or {})}, vision_config={**VISION, **(vision or {})},
                                   projection_dim=16, attn_implementation="eager", **kw)


def make_clip(tmp_path, seed=0, **kw):
    torch.manual_seed(seed)
    hf = transformers.CLIPModel(hf_clip_config(**kw)).eval()
    with torch.no_grad():
        hf.logit_scale.fill_(1.7)  # not the init value, so that loading it is checked
    folder = tmp_path / "hf-clip"
    hf.save_pretrained(folder)
    return loom.CLIPModel.from_pretrained(folder), hf, folder


def make_tower(tmp_path, name, seed=0, **kw):
    torch.manual_seed(seed)
    kind, config_cls = TOWERS[name]
    hf = getattr(transformers, name)(config_cls(**{**(TEXT if kind == "text" else VISION), **kw},
                                                attn_implementation="eager")).eval()
    folder = tmp_path / f"hf-{name}"
    hf.save_pretrained(folder)
    return getattr(loom, name).from_pretrained(folder), hf, folder


def text_batch(B=3, T=11, seed=1):
    """Ragged texts: bos, words, eos, then padding (attention mask 0)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 97, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    ids[:, 0] = 97
    for i in range(B):
        end = T - 1 - 3 * i
        ids[i, end] = 98
        ids[i, end + 1:] = 1
        mask[i, end + 1:] = 0
    return dict(input_ids=ids, attention_mask=mask)


def image_batch(B=2, size=30, seed=2):
    g = torch.Generator().manual_seed(seed)
    return dict(pixel_values=torch.randn(B, 3, size, size, generator=g))


def compare_clip(ours, ref, inputs, **flags):
    with torch.no_grad():
        a = ours(**inputs, output_hidden_states=True, output_attentions=True, **flags)
        b = ref(**inputs, output_hidden_states=True, output_attentions=True, **flags)
    for key in ("logits_per_image", "logits_per_text", "text_embeds", "image_embeds", "loss"):
        if getattr(b, key) is not None:
            assert_close(getattr(a, key), getattr(b, key), what=key)
    for tower in ("text_model_output", "vision_model_output"):
        for key in ("last_hidden_state", "hidden_states", "attentions"):
            assert_close(a[tower][key], b[tower][key], what=f"{tower}.{key}")
    return a, b


def test_clip_model_parity(tmp_path):
    ours, ref, _ = make_clip(tmp_path)
    assert ours.loading_report.missing_keys == [] and ours.loading_report.unexpected_keys == []
    assert ours.logit_scale.item() == pytest.approx(1.7)
    inputs = {**text_batch(), **image_batch()}
    a, _ = compare_clip(ours, ref, inputs)
    assert a.logits_per_image.shape == (2, 3) and len(a.text_model_output.hidden_states) == 3
    assert len(a.vision_model_output.attentions) == 3 and a.vision_model_output.attentions[0].shape == (2, 3, 26, 26)
    with torch.no_grad():  # the pooled states of the towers, before projection
        assert_close(a.text_model_output.pooler_output, ref.text_model(**text_batch()).pooler_output)
        assert_close(a.vision_model_output.pooler_output, ref.vision_model(**image_batch()).pooler_output)
        assert_close(ours.get_text_features(**text_batch()), ref.get_text_features(**text_batch()).pooler_output)
        assert_close(ours.get_image_features(**image_batch()), ref.get_image_features(**image_batch()).pooler_output)
        no_mask = ours(input_ids=text_batch()["input_ids"], **image_batch()).logits_per_text
        assert_close(no_mask, ref(input_ids=text_batch()["input_ids"], **image_batch()).logits_per_text)


def test_contrastive_loss_and_gradients_match(tmp_path):
    ours, ref, _ = make_clip(tmp_path)
    inputs = {**text_batch(B=2), **image_batch(B=2), "return_loss": True}
    a, b = ours(**inputs).loss, ref(**inputs).loss
    assert_close(a, b, what="loss")
    a.backward()
    b.backward()
    assert_close(ours.logit_scale.grad, ref.logit_scale.grad, 1e-5, "logit_scale grad")
    assert_close(ours.text_model.encoder.layers[0].self_attn.q_proj.weight.grad,
                 ref.text_model.encoder.layers[0].self_attn.q_proj.weight.grad, 1e-5, "q_proj grad")
    assert_close(ours.vision_model.embeddings.patch_embedding.weight.grad,
                 ref.vision_model.embeddings.patch_embedding.weight.grad, 1e-5, "patch grad")
    with pytest.raises(loom.InputError, match="as many texts as images"):
        ours(**text_batch(B=3), **image_batch(B=2), return_loss=True)


@pytest.mark.parametrize("name", TOWERS)
def test_tower_parity(tmp_path, name):
    ours, ref, _ = make_tower(tmp_path, name)
    assert ours.loading_report.missing_keys == [] and ours.loading_report.unexpected_keys == []
    inputs = text_batch() if TOWERS[name][0] == "text" else image_batch()
    check_parity(ours, ref, inputs)


def test_interpolate_pos_encoding_matches_reference(tmp_path):
    ours, ref, _ = make_clip(tmp_path)
    for size in (42, 18):
        inputs = {**text_batch(), **image_batch(size=size), "interpolate_pos_encoding": True}
        a, _ = compare_clip(ours, ref, inputs)
        assert a.vision_model_output.last_hidden_state.shape[1] == (size // 6) ** 2 + 1
    tower, ref_tower, _ = make_tower(tmp_path, "CLIPVisionModelWithProjection")
    check_parity(tower, ref_tower, {**image_batch(size=36), "interpolate_pos_encoding": True})
    with pytest.raises(loom.InputError, match="42x42.*trained on 30x30"):
        ours(**text_batch(), **image_batch(size=42))


def test_legacy_eos_token_id_2_pools_at_the_highest_id(tmp_path):
    ours, ref, _ = make_tower(tmp_path, "CLIPTextModel", eos_token_id=2)
    inputs = text_batch()
    with torch.no_grad():
        pooled = ours(**inputs).pooler_output
    check_parity(ours, ref, inputs)
    argmax = inputs["input_ids"].argmax(-1)
    assert_close(pooled, ours(**inputs).last_hidden_state[torch.arange(3), argmax])


def test_zero_shot_probabilities_match_transformers(tmp_path):
    """Processor + model, end to end: probabilities of label prompts for each image."""
    tok = tiny_clip_tokenizer()
    text = dict(TEXT, vocab_size=len(tok), bos_token_id=0, eos_token_id=1, pad_token_id=1)
    torch.manual_seed(0)
    ref_model = transformers.CLIPModel(hf_clip_config(text=text, vision=dict(image_size=30))).eval()
    ref_proc = transformers.CLIPProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30}),
        tokenizer=tok)
    folder = tmp_path / "zero-shot"
    ref_model.save_pretrained(folder)
    ref_proc.save_pretrained(folder)
    model = loom.AutoModelForZeroShotImageClassification.from_pretrained(folder)
    proc = loom.AutoProcessor.from_pretrained(folder)
    assert type(model) is loom.CLIPModel and type(proc) is loom.CLIPProcessor
    labels = ["a photo of a cat", "a photo of a dog", "a photo of the sky"]
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((48, 64), (70, 35))]
    with torch.no_grad():
        ours = model(**proc(text=labels, images=images, padding=True, return_tensors="pt")).logits_per_image.softmax(-1)
        ref = ref_model(**ref_proc(text=labels, images=images, padding=True, return_tensors="pt")).logits_per_image.softmax(-1)
    assert ours.shape == (2, 3)
    assert_close(ours, ref, what="zero-shot probabilities")
    assert_close(ours.sum(-1), torch.ones(2))


def test_loom_saves_what_transformers_loads(tmp_path):
    ours, _, folder = make_clip(tmp_path)
    ours.save_pretrained(tmp_path / "loom")
    saved = json.loads((tmp_path / "loom" / "config.json").read_text())
    assert saved["model_type"] == "clip" and saved["architectures"] == ["CLIPModel"]
    assert saved["text_config"]["model_type"] == "clip_text_model" and saved["vision_config"]["patch_size"] == 6
    back = transformers.CLIPModel.from_pretrained(tmp_path / "loom", attn_implementation="eager").eval()
    compare_clip(ours, back, {**text_batch(), **image_batch()})
    for name in TOWERS:
        tower, _, _ = make_tower(tmp_path, name)
        tower.save_pretrained(tmp_path / f"loom-{name}")
        again = getattr(transformers, name).from_pretrained(tmp_path / f"loom-{name}", attn_implementation="eager")
        check_parity(tower, again.eval(), text_batch() if TOWERS[name][0] == "text" else image_batch())


def test_towers_load_from_a_full_clip_checkpoint_and_back(tmp_path):
    clip, ref, folder = make_clip(tmp_path)
    text = loom.CLIPTextModelWithProjection.from_pretrained(folder)
    vision = loom.CLIPVisionModel.from_pretrained(folder)
    assert isinstance(text.config, loom.CLIPTextConfig) and text.config.vocab_size == VOCAB
    assert text.loading_report.missing_keys == [] and vision.loading_report.missing_keys == []
    assert "logit_scale" in vision.loading_report.unexpected_keys
    with torch.no_grad():
        assert_close(text(**text_batch()).text_embeds, ref.get_text_features(**text_batch()).pooler_output)
        assert_close(vision(**image_batch()).pooler_output, ref.vision_model(**image_batch()).pooler_output)
    assert type(loom.AutoModel.from_pretrained(folder)) is loom.CLIPModel
    # A tower saved alone: its own model_type, read by AutoConfig / AutoModel.
    vision.save_pretrained(tmp_path / "vision")
    assert json.loads((tmp_path / "vision" / "config.json").read_text())["model_type"] == "clip_vision_model"
    assert isinstance(loom.AutoConfig.from_pretrained(tmp_path / "vision"), loom.CLIPVisionConfig)
    assert type(loom.AutoModel.from_pretrained(tmp_path / "vision")) is loom.CLIPVisionModel
    # The projection model from a tower checkpoint without projection: the projection is new.
    _, _, text_folder = make_tower(tmp_path, "CLIPTextModel")
    proj = loom.CLIPTextModelWithProjection.from_pretrained(text_folder)
    assert proj.loading_report.missing_keys == ["text_projection.weight"]
    assert type(loom.AutoModel.from_pretrained(text_folder)) is loom.CLIPTextModel


def test_configs_read_legacy_and_nested_forms(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "clip", "projection_dim": 16, "text_config": {"hidden_size": 40},
        "text_config_dict": {"hidden_size": 32, "num_attention_heads": 4}, "vision_config_dict": {"patch_size": 8},
        "vision_config": None, "logit_scale_init_value": 2.0}))
    cfg = loom.CLIPConfig.from_pretrained(folder)
    assert cfg.text_config.hidden_size == 32 and cfg.vision_config.patch_size == 8
    back = transformers.CLIPConfig(**cfg.to_dict())
    assert back.text_config.hidden_size == 32 and back.vision_config.patch_size == 8
    text = loom.CLIPTextConfig.from_pretrained(folder, vocab_size=50)
    assert text.hidden_size == 32 and text.vocab_size == 50 and text.model_type == "clip_text_model"
    assert loom.CLIPConfig.from_dict(cfg.to_dict()) == cfg
    ref = transformers.CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=16)
    ref.save_pretrained(tmp_path / "hf")
    mine = loom.AutoConfig.from_pretrained(tmp_path / "hf")
    assert mine.text_config.max_position_embeddings == 24 and mine.vision_config.image_size == 30
    for kwargs, message in ((dict(text_config=dict(hidden_size=30)), "not divisible"),
                            (dict(vision_config=dict(image_size=8, patch_size=16)), "smaller than patch_size"),
                            (dict(text_config=dict(eos_token_id=[1, 2])), "eos_token_id"),
                            (dict(projection_dim=0), "projection_dim")):
        with pytest.raises(loom.ConfigError, match=message):
            loom.CLIPConfig(**kwargs)


def test_head_mask_and_pruning_per_tower(tmp_path):
    _, _, folder = make_clip(tmp_path)
    inputs = {**text_batch(), **image_batch()}
    text_in, image_in = text_batch(), image_batch()
    check_head_mask_equals_pruning(lambda: loom.CLIPTextModel.from_pretrained(folder), text_in,
                                   layer=1, heads=[0, 3], num_layers=2, num_heads=4)
    check_head_mask_equals_pruning(lambda: loom.CLIPVisionModel.from_pretrained(folder), image_in,
                                   layer=2, heads=[1], num_layers=3, num_heads=3)
    model = loom.CLIPModel.from_pretrained(folder)
    with pytest.raises(loom.InputError, match="two towers"):
        model.prune_heads({0: [1]})
    model.text_model.prune_heads({0: [1, 2]})
    model.vision_model.prune_heads({2: [0]})
    assert model.config.text_config.pruned_heads == {0: [1, 2]} and model.config.pruned_heads == {}
    with torch.no_grad():
        text_mask = torch.ones(2, 4)
        text_mask[0, [1, 2]] = 0
        full = loom.CLIPModel.from_pretrained(folder)
        expected = full.text_model(**text_in, head_mask=text_mask).last_hidden_state
        got = model.text_model(**text_in).last_hidden_state
    assert_close(got, expected, what="pruned text tower")
    reloaded = check_save_load(model, tmp_path, inputs)
    assert reloaded.config.text_config.pruned_heads == {0: [1, 2]}
    assert reloaded.config.vision_config.pruned_heads == {2: [0]}
    assert reloaded.vision_model.encoder.layers[2].self_attn.q_proj.out_features == 16


def test_resize_token_embeddings_with_added_tokens(tmp_path):
    tok_folder = tmp_path / "tok"
    tiny_clip_tokenizer().save_pretrained(tok_folder)
    tok = loom.AutoTokenizer.from_pretrained(tok_folder)
    text = dict(TEXT, vocab_size=len(tok), bos_token_id=0, eos_token_id=1, pad_token_id=1)
    torch.manual_seed(0)
    transformers.CLIPModel(hf_clip_config(text=text)).save_pretrained(tmp_path / "clip")
    model = loom.CLIPModel.from_pretrained(tmp_path / "clip")
    old = model.get_input_embeddings().weight.detach().clone()
    assert tok.add_tokens(["<cat-token>", "<dog-token>"]) == 2
    model.resize_token_embeddings(len(tok))
    assert model.config.text_config.vocab_size == len(tok) == old.shape[0] + 2
    new = model.get_input_embeddings().weight
    assert max_diff(new[:-2], old) == 0.0
    assert_close(new[-2:], old.mean(0).expand(2, -1))
    batch = tok(["a <cat-token> photo", "<dog-token>"], padding=True, return_tensors="pt")
    assert int(batch["input_ids"].max()) == len(tok) - 1
    with torch.no_grad():
        out = model(**batch, **image_batch())
    assert out.logits_per_text.shape == (2, 2)
    model.save_pretrained(tmp_path / "resized")
    back = transformers.CLIPModel.from_pretrained(tmp_path / "resized", attn_implementation="eager").eval()
    compare_clip(model, back, {**batch, **image_batch()})


def test_bad_inputs(tmp_path):
    ours, _, _ = make_clip(tmp_path)
    text = ours.text_model
    with pytest.raises(loom.InputError, match="at most max_position_embeddings=24"):
        text(input_ids=torch.ones(1, 30, dtype=torch.long))
    with pytest.raises(loom.InputError, match="input_ids must be in \\[0, 99\\)"):
        text(input_ids=torch.tensor([[1, 120]]))
    with pytest.raises(loom.InputError, match="input_ids is required"):
        text()
    with pytest.raises(loom.InputError, match="pixel_values must have shape"):
        ours.vision_model(pixel_values=torch.zeros(2, 30, 30))
    with pytest.raises(loom.ConfigError, match="CLIPTextModel needs a CLIPTextConfig"):
        loom.CLIPTextModel(loom.CLIPVisionConfig())


def test_fresh_model_initialises_and_trains():
    torch.manual_seed(0)
    cfg = loom.CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=16)
    model = loom.CLIPModel(cfg).train()
    assert model.logit_scale.item() == pytest.approx(2.6592)
    q = model.text_model.encoder.layers[0].self_attn.q_proj.weight
    assert 0.5 * 32**-0.5 * 4**-0.5 < q.std().item() < 1.5 * 32**-0.5 * 4**-0.5  # the reference's scaled init
    assert model.vision_model.pre_layrnorm.weight.eq(1).all()
    inputs = {**text_batch(B=4), **image_batch(B=4), "return_loss": True}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(**inputs).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
