"""Image processors against transformers' PIL backend (`ViTImageProcessorPil`,
`CLIPImageProcessorPil`: transformers 5 defaults to a torchvision backend, which is not the
reference here): every input kind, sizes and aspect ratios, settings, files both ways."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

import loom
from loom.preprocessing.image import ImageProcessor, output_size

ATOL = 1e-5
# (height, width): square, tall, wide, very wide, smaller than CLIP's crop, odd sizes
SIZES = [(224, 224), (300, 180), (97, 411), (40, 640), (150, 120), (33, 17)]
PAIRS = {
    "vit": (loom.ViTImageProcessor, ViTImageProcessorPil),
    "clip": (loom.CLIPImageProcessor, CLIPImageProcessorPil),
}


def rgb(h, w, seed=0) -> np.ndarray:
    return np.random.default_rng(seed + 7 * h + w).integers(0, 256, (h, w, 3), dtype=np.uint8)


def rgba(h, w, seed=0) -> np.ndarray:
    a = np.random.default_rng(seed + h).integers(0, 256, (h, w, 4), dtype=np.uint8)
    a[: h // 3, :, 3] = 0  # fully transparent band: becomes white
    return a


def as_kind(kind: str, h: int, w: int, tmp_path):
    """(input for loom, input for the reference) of one image of the given kind."""
    x = rgb(h, w)
    if kind == "pil":
        return Image.fromarray(x), Image.fromarray(x)
    if kind == "pil-gray":
        g = Image.fromarray(x).convert("L")
        return g, g
    if kind == "pil-rgba":
        return Image.fromarray(rgba(h, w), "RGBA"), Image.fromarray(rgba(h, w), "RGBA")
    if kind == "pil-palette":
        p = Image.fromarray(x).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        return p, p
    if kind == "np-hwc":
        return x, x
    if kind == "np-chw":
        return x.transpose(2, 0, 1).copy(), x.transpose(2, 0, 1).copy()
    if kind == "np-gray-2d":  # the reference cannot read 2-D arrays; (H, W, 1) is the same image
        return x[:, :, 0], x[:, :, :1]
    if kind == "np-rgba":
        return rgba(h, w), rgba(h, w)
    if kind == "np-float01":
        return x / 255.0, x / 255.0
    if kind == "np-float255":
        return x.astype(np.float32), x.astype(np.float32)
    if kind == "torch-chw":
        t = torch.from_numpy(x.transpose(2, 0, 1).copy())
        return t, t.clone()
    if kind == "torch-float":
        t = torch.from_numpy(x.transpose(2, 0, 1).copy()).float() / 255
        return t, t.clone()
    if kind == "file-png":
        path = tmp_path / f"img-{h}x{w}.png"
        Image.fromarray(rgba(h, w), "RGBA").save(path)  # files drop alpha, as load_image does
        return str(path), str(path)
    if kind == "file-jpeg-exif":
        path = tmp_path / f"img-{h}x{w}.jpg"
        exif = Image.Image().getexif()
        exif[0x0112] = 6  # rotated: must be applied
        Image.fromarray(x).save(path, exif=exif, quality=90)
        return path, str(path)
    raise AssertionError(kind)


KINDS = ["pil", "pil-gray", "pil-rgba", "pil-palette", "np-hwc", "np-chw", "np-gray-2d", "np-rgba",
         "np-float01", "np-float255", "torch-chw", "torch-float", "file-png", "file-jpeg-exif"]


def reference(name: str, **kw):
    # ViT's reference leaves non-RGB images alone (and then fails on them); loom converts
    # them, so the reference is asked to convert too.
    if name == "vit":
        kw.setdefault("do_convert_rgb", True)
    return PAIRS[name][1](**kw)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["vit", "clip"])
def test_every_input_kind_matches_reference(tmp_path, name, kind):
    ours = PAIRS[name][0]()
    ref = reference(name)
    pairs = [as_kind(kind, h, w, tmp_path) for h, w in SIZES]
    a = ours([p[0] for p in pairs], return_tensors="np")["pixel_values"]
    b = ref([p[1] for p in pairs], return_tensors="np")["pixel_values"]
    assert a.shape == b.shape == (len(SIZES), 3, 224, 224) and a.dtype == np.float32
    assert np.abs(a - b).max() <= ATOL, np.abs(a - b).max()
    one = ours(pairs[1][0], return_tensors="np")["pixel_values"]
    assert np.abs(one[0] - b[1]).max() <= ATOL  # a single image, not in a list


@pytest.mark.parametrize("name", ["vit", "clip"])
@pytest.mark.parametrize("settings", [
    dict(size={"height": 64, "width": 48}),
    dict(size={"shortest_edge": 50}, do_center_crop=False),
    dict(size={"shortest_edge": 40, "longest_edge": 60}, do_center_crop=False),
    dict(size={"max_height": 70, "max_width": 50}, do_center_crop=False),
    dict(size={"shortest_edge": 32}, crop_size={"height": 40, "width": 24}, do_center_crop=True),
    dict(do_resize=False, crop_size={"height": 16, "width": 16}, do_center_crop=True),
    dict(do_normalize=False),
    dict(do_rescale=False, image_mean=[120.0, 110.0, 100.0], image_std=[60.0, 50.0, 70.0]),
    dict(image_mean=0.4, image_std=0.2, rescale_factor=1 / 127.5),
    *[dict(resample=r, size={"height": 57, "width": 91}) for r in range(6)],
])
def test_settings_match_reference(name, settings):
    ours, ref = PAIRS[name][0](**settings), reference(name, **settings)
    images = [Image.fromarray(rgb(h, w)) for h, w in SIZES]
    a = ours(images)["pixel_values"]
    b = ref(images)["pixel_values"]
    assert len(a) == len(b) == len(SIZES)
    for x, y in zip(a, b):
        assert x.shape == y.shape and np.abs(x - y).max() <= ATOL
    # The same settings as call-time overrides of a default processor.
    c = PAIRS[name][0]()(images, **settings)["pixel_values"]
    assert all(np.array_equal(x, z) for x, z in zip(a, c))


def test_int_and_tuple_sizes_read_as_the_reference_reads_them():
    images = [Image.fromarray(rgb(h, w)) for h, w in SIZES[:3]]
    for name, size in (("vit", 40), ("clip", 40), ("vit", (30, 50))):
        ours, ref = PAIRS[name][0](size=size, crop_size=24), reference(name, size=size, crop_size=24)
        for x, y in zip(ours(images)["pixel_values"], ref(images)["pixel_values"]):
            assert x.shape == y.shape and np.abs(x - y).max() <= ATOL
    assert loom.CLIPImageProcessor(size=40).size == {"shortest_edge": 40}
    assert loom.ViTImageProcessor(size=40).size == {"height": 40, "width": 40}


def test_output_sizes_follow_the_reference_rules():
    assert output_size(480, 640, {"shortest_edge": 224}) == (224, 298)
    assert output_size(640, 480, {"shortest_edge": 224}) == (298, 224)
    assert output_size(100, 200, {"max_height": 50, "max_width": 50}) == (25, 50)
    assert output_size(100, 200, {"max_height": 200, "max_width": 500}) == (200, 400)
    assert output_size(100, 400, {"shortest_edge": 50, "longest_edge": 100}) == (25, 100)
    assert output_size(10, 20, {"height": 3, "width": 4}) == (3, 4)


def test_return_types_and_threads():
    images = [Image.fromarray(rgb(h, w)) for h, w in SIZES]
    proc = loom.CLIPImageProcessor()
    listed = proc(images)["pixel_values"]
    assert isinstance(listed, list) and all(x.shape == (3, 224, 224) and x.dtype == np.float32 for x in listed)
    stacked = proc(images, return_tensors="np").pixel_values
    pt = proc(images, return_tensors="pt").pixel_values
    assert isinstance(pt, torch.Tensor) and pt.dtype == torch.float32 and pt.shape == (6, 3, 224, 224)
    assert np.array_equal(np.stack(listed), stacked) and np.array_equal(pt.numpy(), stacked)
    one = proc(images, return_tensors="np", num_threads=1).pixel_values
    many = proc(images * 3, return_tensors="np", num_threads=4).pixel_values
    assert np.array_equal(one, stacked) and np.array_equal(many[12:], stacked)
    last = proc(images, return_tensors="np", data_format="channels_last").pixel_values
    assert last.shape == (6, 224, 224, 3) and np.array_equal(last, stacked.transpose(0, 2, 3, 1))
    last_list = proc(images[:2], data_format="channels_last").pixel_values
    assert all(np.array_equal(x, y.transpose(1, 2, 0)) for x, y in zip(last_list, listed))
    batch = proc(np.stack([rgb(50, 60, s) for s in range(4)]), return_tensors="np").pixel_values  # (B, H, W, C)
    assert batch.shape == (4, 3, 224, 224)
    assert np.array_equal(batch[2], proc(rgb(50, 60, 2), return_tensors="np").pixel_values[0])


def test_save_load_both_ways(tmp_path):
    ours = loom.CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 56, "width": 48},
                                   resample=2, image_mean=[0.1, 0.2, 0.3])
    ours.extra["custom_key"] = [1, 2]
    files = ours.save_pretrained(tmp_path / "loom")
    assert files == ["preprocessor_config.json"]
    saved = json.loads((tmp_path / "loom" / "preprocessor_config.json").read_text())
    assert saved["image_processor_type"] == "CLIPImageProcessor" and saved["custom_key"] == [1, 2]
    back = CLIPImageProcessorPil.from_pretrained(tmp_path / "loom")
    auto = __import__("transformers").AutoImageProcessor.from_pretrained(tmp_path / "loom", backend="pil")
    assert type(auto) is CLIPImageProcessorPil
    images = [Image.fromarray(rgb(h, w)) for h, w in SIZES]
    a = ours(images, return_tensors="np").pixel_values
    assert np.abs(a - back(images, return_tensors="np").pixel_values).max() <= ATOL
    assert np.abs(a - auto(images, return_tensors="np").pixel_values).max() <= ATOL
    again = loom.AutoImageProcessor.from_pretrained(tmp_path / "loom")
    assert type(again) is loom.CLIPImageProcessor and again.to_dict() == ours.to_dict()
    # transformers -> loom
    ref = ViTImageProcessorPil(size={"height": 40, "width": 72}, resample=3, image_std=[0.2, 0.3, 0.4])
    ref.save_pretrained(tmp_path / "hf")
    mine = loom.AutoImageProcessor.from_pretrained(tmp_path / "hf")
    assert type(mine) is loom.ViTImageProcessor and mine.size == {"height": 40, "width": 72}
    assert np.abs(mine(images, return_tensors="np").pixel_values - ref(images, return_tensors="np").pixel_values).max() <= ATOL


def test_reads_the_old_feature_extractor_and_new_processor_layouts(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    # As openai/clip-vit-base-patch32 ships it: int sizes, feature_extractor_type.
    (old / "preprocessor_config.json").write_text(json.dumps({
        "crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}))
    proc = loom.AutoImageProcessor.from_pretrained(old)
    assert type(proc) is loom.CLIPImageProcessor
    assert proc.size == {"shortest_edge": 224} and proc.crop_size == {"height": 224, "width": 224}
    image = Image.fromarray(rgb(300, 200))
    ref = CLIPImageProcessorPil.from_pretrained(old)
    assert np.abs(proc(image, return_tensors="np").pixel_values - ref(image, return_tensors="np").pixel_values).max() <= ATOL
    new = tmp_path / "new"  # transformers 5 nests the settings in processor_config.json
    new.mkdir()
    (new / "processor_config.json").write_text(json.dumps({
        "processor_class": "CLIPProcessor",
        "image_processor": {**loom.CLIPImageProcessor(size={"shortest_edge": 32}).to_dict(),
                            "image_processor_type": "CLIPImageProcessorPil"}}))
    assert loom.AutoImageProcessor.from_pretrained(new).size == {"shortest_edge": 32}
    overridden = loom.CLIPImageProcessor.from_pretrained(new, size={"shortest_edge": 48})
    assert overridden.size == {"shortest_edge": 48}


def test_bad_inputs_raise_loom_errors(tmp_path):
    proc = loom.ViTImageProcessor()
    cases = [
        ([], "empty"),
        (np.zeros((0, 10, 3), np.uint8), "every dimension"),
        (np.zeros((10,), np.uint8), "expected \\(H, W\\)"),
        (np.zeros((2, 3, 10, 10, 3), np.uint8), "expected \\(H, W\\)"),
        (np.zeros((10, 10, 5), np.uint8), "no channel axis"),
        (np.full((10, 10, 3), 300.5), "expected \\[0, 1\\]"),
        (np.full((10, 10, 3), -4.0), "expected \\[0, 255\\]"),
        (np.zeros((10, 10, 3), dtype=object), "dtype"),
        ({"not": "an image"}, "images must be a PIL image"),
        ([rgb(8, 8), {"not": "an image"}], "image 1 is a dict; expected a PIL image"),
        (Image.new("RGB", (0, 5)), "empty"),
        (str(tmp_path / "missing.png"), "does not exist"),
    ]
    (tmp_path / "junk.png").write_bytes(b"this is not a png")
    cases.append((str(tmp_path / "junk.png"), "not an image Pillow can read"))
    for image, message in cases:
        with pytest.raises(loom.InputError, match=message):
            proc(image)
    with pytest.raises(loom.InputError, match="return_tensors"):
        proc(Image.new("RGB", (8, 8)), return_tensors="tf")
    with pytest.raises(loom.InputError, match="unknown argument"):
        proc(Image.new("RGB", (8, 8)), sise=3)
    with pytest.raises(loom.InputError, match="cannot stack"):
        proc([rgb(10, 12), rgb(14, 12)], do_resize=False, return_tensors="np")
    with pytest.raises(loom.InputError, match="image_mean has 3 values but the image has 4"):
        proc(rgba(10, 10), do_convert_rgb=False)
    with pytest.raises(loom.InputError, match="data_format must be"):
        proc(Image.new("RGB", (8, 8)), data_format="NCHW")
    with pytest.raises(loom.InputError, match="num_threads"):
        proc(Image.new("RGB", (8, 8)), num_threads=0)


def test_bad_settings_raise_config_errors(tmp_path):
    for kwargs, message in [
        (dict(size={"height": 10}), "size must be"),
        (dict(size={"height": 0, "width": 3}), "positive int"),
        (dict(resample=9), "resample"),
        (dict(image_std=[0.5, 0.0, 0.5]), "must not contain 0"),
        (dict(image_mean="gray"), "image_mean"),
        (dict(do_center_crop=True, crop_size=None), "no crop_size"),
        (dict(do_resize="yes"), "do_resize"),
    ]:
        with pytest.raises(loom.ConfigError, match=message):
            loom.ViTImageProcessor(**kwargs)
    with pytest.raises(loom.EntryNotFoundError, match="preprocessor_config.json"):
        loom.AutoImageProcessor.from_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_processor_type": "FancyImageProcessor"}))
    with pytest.raises(loom.UnknownModelTypeError, match="FancyImageProcessor"):
        loom.AutoImageProcessor.from_pretrained(tmp_path)
    generic = ImageProcessor.from_pretrained(tmp_path)  # the base class reads any standard settings
    assert generic.size == {"height": 224, "width": 224}


def test_preprocessing_imports_neither_torch_nor_transformers():
    code = ("import sys; import numpy as np; from loom.preprocessing.image import ImageProcessor;"
            "from loom import CLIPImageProcessor, CLIPProcessor;"
            "CLIPImageProcessor()(np.zeros((20, 30, 3), np.uint8), return_tensors='np');"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
