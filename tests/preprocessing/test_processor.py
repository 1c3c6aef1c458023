"""`Processor` / `CLIPProcessor` against transformers' `CLIPProcessor` (a tiny CLIP BPE
tokenizer and the PIL image processor): outputs, files both ways, argument routing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

import loom
from loom.preprocessing.processor import BatchFeature, Processor

TEXTS = ["a photo of the cat", "the dog", "a photo of a very small bird on the big tree"]


def tiny_clip_tokenizer() -> transformers.CLIPTokenizer:
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    merges = [("t", "h"), ("th", "e</w>"), ("o", "f</w>"), ("p", "h"), ("o", "t"), ("ot", "o</w>")]
    for m in merges:
        vocab["".join(m)] = len(vocab)
    return transformers.CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=32)


def images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((40, 60), (64, 32))]


@pytest.fixture
def hf_folder(tmp_path):
    proc = transformers.CLIPProcessor(image_processor=CLIPImageProcessorPil(size={"shortest_edge": 30},
                                                                           crop_size={"height": 30, "width": 30}),
                                      tokenizer=tiny_clip_tokenizer())
    proc.save_pretrained(tmp_path / "hf")
    return proc, tmp_path / "hf"


def assert_same(ours: dict, ref: dict) -> None:
    assert sorted(ours) == sorted(ref)
    for key in ref:
        a, b = np.asarray(ours[key]), np.asarray(ref[key])
        assert a.shape == b.shape, key
        assert np.abs(a.astype(np.float64) - b.astype(np.float64)).max() <= 1e-5, key


def test_clip_processor_matches_transformers(hf_folder):
    ref, folder = hf_folder
    ours = loom.AutoProcessor.from_pretrained(folder)  # transformers 5 layout: settings nested in processor_config.json
    assert type(ours) is loom.CLIPProcessor
    assert type(ours.image_processor) is loom.CLIPImageProcessor and isinstance(ours.tokenizer, loom.Tokenizer)
    for kwargs in (dict(padding=True, return_tensors="pt"), dict(padding="max_length", max_length=40, return_tensors="np"),
                   dict(padding=True, truncation=True, max_length=6, return_tensors="pt")):
        a = ours(text=TEXTS, images=images(), **kwargs)
        b = ref(text=TEXTS, images=images(), **kwargs)
        assert_same(a, b)
        assert a["pixel_values"].shape == (2, 3, 30, 30)
    assert isinstance(a, BatchFeature) and isinstance(a.input_ids, torch.Tensor)
    assert_same(ours(text=TEXTS[0]), ref(text=TEXTS[0]))
    assert_same(ours(images=images(), return_tensors="np"), ref(images=images(), return_tensors="np"))
    assert ours.model_input_names == ["pixel_values", "input_ids", "attention_mask"]


def test_decode_is_forwarded_to_the_tokenizer(hf_folder):
    ref, folder = hf_folder
    ours = loom.CLIPProcessor.from_pretrained(folder)
    ids = ours(text=TEXTS, padding=True)["input_ids"]
    assert ids == ref(text=TEXTS, padding=True)["input_ids"]
    assert ours.decode(ids[0]) == ours.tokenizer.decode(ids[0])
    assert ours.batch_decode(ids, skip_special_tokens=True) == ours.tokenizer.batch_decode(ids, skip_special_tokens=True)
    assert "photo" in ours.decode(ids[0], skip_special_tokens=True)
    # CLIP's word-end marker decodes as a space, as in transformers
    for row in ids:
        assert ours.decode(row) == ref.decode(row)
        assert ours.decode(row, skip_special_tokens=True) == ref.decode(row, skip_special_tokens=True)
    assert ours.batch_decode(ids, skip_special_tokens=True) == ref.batch_decode(ids, skip_special_tokens=True)
    assert "</w>" not in "".join(ours.batch_decode(ids))


def test_loom_saves_what_transformers_loads(hf_folder, tmp_path):
    ref, folder = hf_folder
    ours = loom.CLIPProcessor.from_pretrained(folder)
    ours.image_processor.size = {"shortest_edge": 26}
    ours.image_processor.crop_size = {"height": 24, "width": 20}
    files = ours.save_pretrained(tmp_path / "loom")
    assert {"processor_config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"} <= set(files)
    config = json.loads((tmp_path / "loom" / "processor_config.json").read_text())
    assert config == {"processor_class": "CLIPProcessor"}
    back = transformers.AutoProcessor.from_pretrained(tmp_path / "loom", backend="pil")
    assert type(back) is transformers.CLIPProcessor and type(back.image_processor) is CLIPImageProcessorPil
    a = ours(text=TEXTS, images=images(), padding=True, return_tensors="np")
    assert a["pixel_values"].shape == (2, 3, 24, 20)
    assert_same(a, back(text=TEXTS, images=images(), padding=True, return_tensors="np"))
    again = loom.AutoProcessor.from_pretrained(tmp_path / "loom")
    assert type(again) is loom.CLIPProcessor
    assert_same(again(text=TEXTS, images=images(), padding=True, return_tensors="np"), a)


def test_generic_processor_routes_arguments(hf_folder, tmp_path):
    ref, folder = hf_folder
    tok = loom.AutoTokenizer.from_pretrained(folder)
    imp = loom.CLIPImageProcessor(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30})
    proc = Processor(tokenizer=tok, image_processor=imp)
    out = proc(text=TEXTS, images=images(), padding="max_length", truncation=True, max_length=16, size={"shortest_edge": 40},
               crop_size={"height": 36, "width": 36}, return_tensors="pt")
    assert out["input_ids"].shape == (3, 16) and out["pixel_values"].shape == (2, 3, 36, 36)
    own = proc(images=images(), images_kwargs={"do_normalize": False}, return_tensors="np")
    assert own["pixel_values"].min() >= 0 and own["pixel_values"].max() <= 1
    with pytest.raises(loom.InputError, match="no part called here takes the argument 'colour'"):
        proc(text=TEXTS, colour="red")
    with pytest.raises(loom.InputError, match="at least one of text=, images=, audio="):
        proc()
    with pytest.raises(loom.InputError, match="no feature_extractor for audio="):
        proc(audio=np.zeros(100))
    with pytest.raises(loom.InputError, match="return_tensors"):
        proc(text=TEXTS, return_tensors="jax")
    # Saved and loaded generically: the parts present are found by their files.
    proc.save_pretrained(tmp_path / "generic")
    again = Processor.from_pretrained(tmp_path / "generic")
    assert type(again) is Processor and sorted(again.parts) == ["image_processor", "tokenizer"]
    assert again.image_processor.size == {"shortest_edge": 30}


def save_tokenizer_alone(folder, target):
    """The tiny tokenizer in `target`, without the processor_class its processor wrote."""
    loom.AutoTokenizer.from_pretrained(folder).save_pretrained(target)
    config = json.loads((target / "tokenizer_config.json").read_text())
    assert config.pop("processor_class") == "CLIPProcessor"
    (target / "tokenizer_config.json").write_text(json.dumps(config))


def test_auto_processor_falls_back_to_the_one_preprocessor(tmp_path, hf_folder):
    _, folder = hf_folder
    save_tokenizer_alone(folder, tmp_path / "text")
    assert isinstance(loom.AutoProcessor.from_pretrained(tmp_path / "text"), loom.Tokenizer)
    loom.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "image")
    assert type(loom.AutoProcessor.from_pretrained(tmp_path / "image")) is loom.ViTImageProcessor
    # A model folder whose config says CLIP gets CLIPProcessor without any processor_class.
    model = tmp_path / "model"
    save_tokenizer_alone(folder, model)
    loom.ImageProcessor(size={"height": 32, "width": 32}).save_pretrained(model)
    cfg = json.loads((model / "preprocessor_config.json").read_text())
    cfg.pop("image_processor_type")
    (model / "preprocessor_config.json").write_text(json.dumps(cfg))
    loom.CLIPConfig(text_config=dict(vocab_size=60), vision_config=dict(image_size=32)).save_pretrained(model)
    proc = loom.AutoProcessor.from_pretrained(model)
    assert type(proc) is loom.CLIPProcessor and type(proc.image_processor) is loom.CLIPImageProcessor
    assert proc.image_processor.size == {"height": 32, "width": 32}  # the file's settings, the model's class


def test_processor_construction_errors():
    tok = object()
    with pytest.raises(loom.InputError, match="missing \\['tokenizer'\\]"):
        loom.CLIPProcessor(image_processor=loom.CLIPImageProcessor())
    with pytest.raises(loom.InputError, match="unknown \\['feature_extractor'\\]"):
        loom.CLIPProcessor(loom.CLIPImageProcessor(), tok, feature_extractor=tok)
    with pytest.raises(loom.InputError, match="at least one part"):
        Processor()
    p = loom.CLIPProcessor(loom.CLIPImageProcessor(), tok)  # positional order as in transformers
    assert p.tokenizer is tok and type(p.image_processor) is loom.CLIPImageProcessor
    with pytest.raises(AttributeError, match="feature_extractor"):
        p.feature_extractor


def test_batch_feature_to_and_convert():
    feats = BatchFeature({"pixel_values": [np.zeros((3, 4, 4), np.float32)] * 2,
                          "input_ids": [[1, 2], [3, 4]]}, tensor_type="pt")
    assert feats.pixel_values.shape == (2, 3, 4, 4) and feats.input_ids.dtype == torch.int64
    moved = feats.to(torch.float16)
    assert moved.pixel_values.dtype == torch.float16 and moved.input_ids.dtype == torch.int64
    with pytest.raises(loom.InputError, match="shapes"):
        BatchFeature({"pixel_values": [np.zeros((3, 4, 4)), np.zeros((3, 5, 4))]}, tensor_type="np")
    with pytest.raises(loom.InputError, match="return_tensors='pt'"):
        BatchFeature({"x": np.zeros(3)}).to("cpu")
    with pytest.raises(AttributeError, match="no key 'labels'"):
        feats.labels


def test_from_pretrained_settings_go_to_their_part(hf_folder):
    _, folder = hf_folder
    proc = loom.CLIPProcessor.from_pretrained(folder, size={"shortest_edge": 40}, crop_size=36, model_max_length=16)
    assert proc.image_processor.size == {"shortest_edge": 40}
    assert proc.image_processor.crop_size == {"height": 36, "width": 36}
    assert proc.tokenizer.model_max_length == 16 and "size" not in proc.image_processor.extra
    # transformers' backend switch is accepted and means nothing: loom has the PIL backend's values.
    auto = loom.AutoImageProcessor.from_pretrained(folder, use_fast=False)
    assert type(auto) is loom.CLIPImageProcessor and "use_fast" not in auto.to_dict()


def test_modality_kwargs_win_over_shared_ones(hf_folder):
    _, folder = hf_folder
    proc = loom.CLIPProcessor.from_pretrained(folder)
    out = proc(images=images(), size={"shortest_edge": 40}, crop_size=40,
               images_kwargs={"crop_size": {"height": 20, "width": 24}}, return_tensors="np")
    assert out["pixel_values"].shape == (2, 3, 20, 24)
