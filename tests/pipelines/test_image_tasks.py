"""The image tasks against transformers' pipelines on tiny random ViT and CLIP checkpoints
(with their transformers image processors), on real image files and PIL images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from PIL import Image

import loom
from tests.helpers import minilm_dir
from tests.pipelines.test_text_tasks import assert_same

LABELS = ["cat", "dog", "car", "tree"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Paths of PNG and JPEG files of several sizes, and one PIL image."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(40, 40), (64, 48), (30, 90), (50, 50), (33, 47)]):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        pixels[: h // 2] //= (i + 2)   # some structure, different per image
        path = root / f"img{i}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=4, intermediate_size=37, initializer_range=0.3,
                                 id2label=dict(enumerate(LABELS)),
                                 label2id={x: i for i, x in enumerate(LABELS)})
    folder = tmp_path_factory.mktemp("tiny-vit")
    transformers.ViTForImageClassification(cfg).eval().save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    torch.manual_seed(0)
    text = dict(vocab_size=30522, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=64, bos_token_id=101, eos_token_id=102,
                pad_token_id=0)
    vision = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37,
                  num_hidden_layers=2, num_attention_heads=4)
    cfg = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
    folder = tmp_path_factory.mktemp("tiny-clip")
    transformers.CLIPModel(cfg).eval().save_pretrained(folder)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32},
                                    crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(folder)
    return folder


def test_image_classification_equals_transformers(vit, images):
    ours = loom.pipeline("image-classification", model=str(vit))
    ref = transformers.pipeline("image-classification", model=str(vit))
    assert_same(ours(images[0]), ref(images[0]))
    assert_same(ours(images), ref(images))
    assert_same(ours(images, top_k=2), ref(images, top_k=2))
    assert_same(ours(images, function_to_apply="sigmoid"), ref(images, function_to_apply="sigmoid"))
    pil = Image.open(images[1])
    assert_same(ours(pil), ref(pil))
    array = np.asarray(Image.open(images[2]))
    assert_same(ours(array), ours(images[2]))
    scores = [d["score"] for d in ours(images[0])]
    assert len(scores) == 4 and scores == sorted(scores, reverse=True) and scores[0] - scores[-1] > 0.05
    ours.batch_size = 1
    assert_same(ours(images), ref(images))   # batch of 1 equals batch of 8


def test_image_feature_extraction_equals_transformers(vit, images, tmp_path):
    base = tmp_path / "vit-base"
    transformers.ViTModel.from_pretrained(vit).save_pretrained(base)
    transformers.ViTImageProcessor.from_pretrained(vit).save_pretrained(base)
    ours = loom.pipeline("image-feature-extraction", model=str(base))
    ref = transformers.pipeline("image-feature-extraction", model=str(base))
    assert_same(ours(images[0]), ref(images[0]))
    assert_same(ours(images, pool=True), ref(images, pool=True))
    t = ours(images[3], return_tensors=True)
    assert isinstance(t, torch.Tensor) and t.shape == (1, 17, 32)


def test_zero_shot_image_classification_equals_transformers(clip, images):
    ours = loom.pipeline("zero-shot-image-classification", model=str(clip))
    ref = transformers.pipeline("zero-shot-image-classification", model=str(clip))
    labels = ["a cat", "a dog", "a red car", "trees"]
    assert_same(ours(images[0], candidate_labels=labels), ref(images[0], candidate_labels=labels))
    assert_same(ours(images, candidate_labels=labels), ref(images, candidate_labels=labels))
    model = loom.CLIPModel.from_pretrained(clip)
    by_processor = loom.pipeline("zero-shot-image-classification", model=model, processor=str(clip))
    assert_same(by_processor(images[1], candidate_labels=labels), ref(images[1], candidate_labels=labels))
    template = "A picture of {}."
    assert_same(ours(images[:2], labels, hypothesis_template=template),
                ref(images[:2], candidate_labels=labels, hypothesis_template=template))


def test_image_bad_input(vit, clip, images, tmp_path):
    pipe = loom.pipeline("image-classification", model=str(vit))
    missing = str(tmp_path / "nope.png")
    with pytest.raises(loom.InputError, match="nope.png does not exist"):
        pipe(missing)
    with pytest.raises(loom.InputError, match=r"inputs\[1\]: the image file .*nope.png does not exist"):
        pipe([images[0], missing])
    with pytest.raises(loom.InputError, match=r"inputs\[2\] is None"):
        pipe([images[0], images[1], None])
    with pytest.raises(loom.InputError, match="empty string"):
        pipe("")
    with pytest.raises(loom.InputError, match="empty list"):
        pipe([])
    with pytest.raises(loom.InputError, match="URL"):
        pipe("https://example.com/cat.png")
    with pytest.raises(loom.InputError, match=r"inputs\[0\] must be an image.*found int"):
        pipe([3])
    not_image = tmp_path / "text.png"
    not_image.write_text("not an image")
    with pytest.raises(loom.InputError, match="not an image"):
        pipe(str(not_image))
    zero = loom.pipeline("zero-shot-image-classification", model=str(clip))
    with pytest.raises(loom.InputError, match="candidate_labels"):
        zero(images[0])
