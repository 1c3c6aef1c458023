"""Image processors: images in, the `pixel_values` array a vision model takes out.

`ImageProcessor` reads `preprocessor_config.json` (or the `image_processor` entry of a
`transformers` 5.x `processor_config.json`) and applies, as the file says: conversion to RGB,
resize (exact size, shortest edge, or within a maximum box, with the checkpoint's Pillow
resample filter), center crop, rescale and normalize, channels first. Model processors are
declarative subclasses that only change the defaults (`ViTImageProcessor`,
`CLIPImageProcessor` in their model folders).

Matches `transformers`' PIL backend value for value: resizing is the same Pillow call on the
same 8-bit pixels, and rescale + normalize, an affine map of those 256 possible values, is
one table look-up per channel computed with the reference's float64/float32 steps. What is
saved is the per-image array round trips of the reference (HWC -> CHW -> PIL -> NumPy) and
its float64 temporaries. Differs: `do_convert_rgb=None` (the ViT default) converts images
that are not RGB (grayscale, RGBA, palette) instead of failing later on a channel count;
2-D arrays are read as grayscale.

NumPy + Pillow only; torch is imported only for `return_tensors="pt"` or tensor inputs.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, EntryNotFoundError, InputError
from ..io import read_json
from .processor import PROCESSOR_FILE, BatchFeature, check_tensor_type
from .settings import PREPROCESSOR_FILE, PreprocessorSettings

logger = logging.getLogger(__name__)


# Pillow's filter numbers, as config files store them in "resample".
NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING = 0, 1, 2, 3, 4, 5
IMAGENET_STANDARD_MEAN = (0.5, 0.5, 0.5)
IMAGENET_STANDARD_STD = (0.5, 0.5, 0.5)
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

SIZE_KEYS = ({"height", "width"}, {"shortest_edge"}, {"shortest_edge", "longest_edge"},
             {"max_height", "max_width"})
CHANNELS = (1, 3, 4)
# The settings loom acts on; anything else in the file is kept in `extra` and written back.
FIELDS = ("do_convert_rgb", "do_resize", "size", "default_to_square", "resample", "do_center_crop",
          "crop_size", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std")
# Keys that name the writer, not a setting.
_TYPE_KEYS = ("image_processor_type", "feature_extractor_type", "processor_class", "auto_map")


class ImageProcessor(PreprocessorSettings):
    """Resize, crop, rescale and normalize images as a checkpoint's preprocessor config says."""

    do_convert_rgb: bool | None = None   # None: convert only images that are not RGB
    do_resize: bool = True
    size: dict[str, int] | None = {"height": 224, "width": 224}
    default_to_square: bool = True       # how a bare int `size` reads: square or shortest edge
    resample: int = BILINEAR
    do_center_crop: bool = False
    crop_size: dict[str, int] | None = None
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, ...] | float = IMAGENET_STANDARD_MEAN
    image_std: tuple[float, ...] | float = IMAGENET_STANDARD_STD
    model_input_names: ClassVar[list[str]] = ["pixel_values"]
    valid_kwargs: ClassVar[frozenset[str]] = frozenset(FIELDS) | {"input_data_format", "data_format", "num_threads"}
    # Threads resizing the images of one call: the usable cores, at most 8; 1 runs inline.
    # An attribute of the object, not a setting of the file: it never changes the values.
    num_threads: int = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))

    def __init__(self, **kwargs):
        unknown = {k: v for k, v in kwargs.items() if k not in FIELDS and k not in _TYPE_KEYS}
        self.extra: dict[str, Any] = copy.deepcopy(unknown)
        settings = {f: copy.deepcopy(kwargs[f] if kwargs.get(f) is not None else getattr(type(self), f))
                    for f in FIELDS}
        for name, value in _checked(settings, f"{type(self).__name__} settings").items():
            setattr(self, name, value)

    # -- files ----------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, config: dict[str, Any], **overrides) -> ImageProcessor:
        return cls(**{**config, **overrides})

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        token: str | bool | None = None, subfolder: str | None = None,
                        **overrides) -> ImageProcessor:
        """Read preprocessor_config.json (or processor_config.json's `image_processor`)."""
        from ..hub import pin

        hub = dict(revision=pin(path_or_repo_id, revision), cache_dir=cache_dir, local_files_only=local_files_only,
                   token=token, subfolder=subfolder)
        return cls.from_dict(load_image_processor_dict(path_or_repo_id, **hub), **overrides)

    def to_dict(self) -> dict[str, Any]:
        out = {**copy.deepcopy(self.extra)}
        for name in FIELDS:
            value = getattr(self, name)
            if name == "default_to_square" and value == type(self).default_to_square:
                continue  # sizes are written as dicts, so it only matters when changed
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else copy.deepcopy(value)
        out["image_processor_type"] = type(self).__name__
        return out


    # -- calling --------------------------------------------------------------------------

    def __call__(self, images, return_tensors: str | None = None, *,
                 input_data_format: str | None = None, data_format: str = "channels_first",
                 num_threads: int | None = None, **overrides) -> BatchFeature:
        """Preprocess one image or a list: PIL images, NumPy arrays or torch tensors
        ((H, W), (H, W, C) or (C, H, W); uint8, or float in [0, 1] or [0, 255]), or file
        paths. Keyword overrides replace the config's settings for this call.

        Returns `pixel_values`: a list of (C, H, W) float32 arrays, or one (B, C, H, W)
        array / tensor with `return_tensors="np"` / `"pt"`; (H, W, C) with
        `data_format="channels_last"` (the reference's PIL backend ignores it). Images of a batch are resized on
        `num_threads` threads (Pillow releases the GIL); the result does not depend on it.
        """
        check_tensor_type(return_tensors)
        for name, value in (("input_data_format", input_data_format), ("data_format", data_format)):
            if value not in (None, "channels_first", "channels_last"):
                raise InputError(f"{name} must be 'channels_first' or 'channels_last', found {value!r}")
        plan = self._plan(overrides)
        items = _flatten(images)
        out = _Output(len(items), stack=return_tensors is not None)

        def one(i: int) -> None:
            work, prescale = _resize(_as_working(items[i], i, plan.convert, input_data_format), plan, i)
            if plan.crop is not None:
                work = _center_crop(work, *plan.crop)
            out.add(i, work, plan, prescale)

        _run(one, len(items), self.num_threads if num_threads is None else num_threads)
        return BatchFeature({"pixel_values": out.result(data_format == "channels_last")}, tensor_type=return_tensors)

    preprocess = __call__

    def _plan(self, overrides: dict[str, Any]) -> _Plan:
        unknown = sorted(set(overrides) - set(FIELDS))
        if unknown:
            raise InputError(f"{type(self).__name__}: unknown argument(s) {unknown}; settings are {list(FIELDS)}")
        merged = {f: getattr(self, f) for f in FIELDS}
        # default_to_square first, so that a bare int size in the same call reads by it
        merged.update({k: v for k, v in overrides.items() if v is not None})
        if "size" in overrides and overrides["size"] is not None:
            merged["size"] = _size_dict(overrides["size"], merged["default_to_square"], "size")
        s = _checked(merged, "arguments")
        return _Plan(
            convert=s["do_convert_rgb"],
            size=s["size"] if s["do_resize"] else None,
            resample=s["resample"],
            crop=(s["crop_size"]["height"], s["crop_size"]["width"]) if s["do_center_crop"] else None,
            rescale=s["rescale_factor"] if s["do_rescale"] else None,
            mean=tuple(_floats(s["image_mean"])) if s["do_normalize"] else None,
            std=tuple(_floats(s["image_std"])) if s["do_normalize"] else None,
        )


class _Plan:
    """The settings of one call, resolved and checked."""

    def __init__(self, convert, size, resample, crop, rescale, mean, std):
        self.convert, self.size, self.resample, self.crop = convert, size, resample, crop
        self.rescale, self.mean, self.std = rescale, mean, std

    def normalize(self, channels: int) -> tuple[tuple, tuple] | None:
        if self.mean is None:
            return None
        mean, std = self.mean, self.std
        for name, v in (("image_mean", mean), ("image_std", std)):
            if len(v) not in (1, channels):
                raise InputError(f"{name} has {len(v)} values but the image has {channels} channels")
        return (mean * channels if len(mean) == 1 else mean), (std * channels if len(std) == 1 else std)


def load_image_processor_dict(path_or_repo_id, **hub) -> dict[str, Any]:
    """The image processor settings of a folder or repo, as `transformers` finds them."""
    from ..hub import resolve

    processor_file = resolve(path_or_repo_id, PROCESSOR_FILE, required=False, **hub)
    if processor_file is not None:
        nested = read_json(processor_file, what="processor config").get("image_processor")
        if isinstance(nested, dict):
            return nested
    path = resolve(path_or_repo_id, PREPROCESSOR_FILE, required=False, **hub)
    if path is None:
        raise EntryNotFoundError(
            f"no image processor settings in {path_or_repo_id}: looked for {PREPROCESSOR_FILE} and an "
            f"'image_processor' entry in {PROCESSOR_FILE}. Save one with ImageProcessor.save_pretrained()."
        )
    return read_json(path, what="image processor config")


def image_processor_class_name(config: dict[str, Any]) -> str | None:
    """The loom class name a config's writer recorded ("CLIPFeatureExtractor", "ViTImageProcessorFast"
    and "ViTImageProcessorPil" all name the one loom class)."""
    name = config.get("image_processor_type") or config.get("feature_extractor_type")
    if not isinstance(name, str):
        return None
    name = name.replace("FeatureExtractor", "ImageProcessor")
    for suffix in ("Fast", "Pil"):
        name = name.removesuffix(suffix)
    return name


# -- settings -----------------------------------------------------------------------------

def _checked(s: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate and normalise settings (sizes to dicts, means to tuples); ConfigError names the key."""
    s = dict(s)
    for key in ("do_resize", "do_center_crop", "do_rescale", "do_normalize", "default_to_square"):
        if not isinstance(s[key], bool):
            raise ConfigError(f"{where}: {key} must be true or false, found {s[key]!r}")
    if s["do_convert_rgb"] is not None and not isinstance(s["do_convert_rgb"], bool):
        raise ConfigError(f"{where}: do_convert_rgb must be true, false or null, found {s['do_convert_rgb']!r}")
    if s["size"] is not None:
        s["size"] = _size_dict(s["size"], s["default_to_square"], "size", where)
    elif s["do_resize"]:
        raise ConfigError(f"{where}: do_resize is true but no size is given")
    if s["crop_size"] is not None:
        s["crop_size"] = _size_dict(s["crop_size"], True, "crop_size", where)
        if set(s["crop_size"]) != {"height", "width"}:
            raise ConfigError(f"{where}: crop_size needs height and width, found {s['crop_size']}")
    elif s["do_center_crop"]:
        raise ConfigError(f"{where}: do_center_crop is true but no crop_size is given")
    if isinstance(s["resample"], bool) or s["resample"] not in range(6):
        raise ConfigError(f"{where}: resample must be a Pillow filter number 0-5 "
                          f"(0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming), found {s['resample']!r}")
    if isinstance(s["rescale_factor"], bool) or not isinstance(s["rescale_factor"], (int, float)):
        raise ConfigError(f"{where}: rescale_factor must be a number, found {s['rescale_factor']!r}")
    for key in ("image_mean", "image_std"):
        values = _floats(s[key], f"{where}: {key}")
        if key == "image_std" and any(v == 0 for v in values):
            raise ConfigError(f"{where}: image_std must not contain 0, found {list(values)}")
        s[key] = values if isinstance(s[key], (list, tuple)) else s[key]
    return s


def _floats(value, where: str = "value") -> tuple[float, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ConfigError(f"{where} must be a number or a list of numbers, found {value!r}")
    return tuple(float(v) for v in values)


def _size_dict(size, default_to_square: bool, name: str, where: str = "arguments") -> dict[str, int]:
    """An int, (h, w) or dict size as a dict, read the way `transformers` reads it."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = {"height": size, "width": size} if default_to_square else {"shortest_edge": size}
    elif isinstance(size, (list, tuple)) and len(size) == 2:
        size = {"height": size[0], "width": size[1]}
    if not isinstance(size, dict) or set(size) not in SIZE_KEYS:
        keys = " or ".join("{" + ", ".join(sorted(k)) + "}" for k in SIZE_KEYS)
        raise ConfigError(f"{where}: {name} must be an int, (height, width), or a dict with keys {keys}; found {size!r}")
    for key, value in size.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{where}: {name}[{key!r}] must be a positive int, found {value!r}")
    return dict(size)


# -- inputs -------------------------------------------------------------------------------

def _is_image(x) -> bool:
    return _is_pil(x) or isinstance(x, (np.ndarray, str, os.PathLike)) or _is_tensor(x)


def _is_pil(x) -> bool:
    return type(x).__module__.startswith("PIL.") and hasattr(x, "getbands")


def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "numpy")


def _flatten(images) -> list:
    """One image, a list of images, a list of lists, or a 4-D batch array -> a flat list."""
    if _is_tensor(images) or isinstance(images, np.ndarray):
        if images.ndim == 4:
            return list(images)
        return [images]
    if _is_image(images):
        return [images]
    if isinstance(images, (list, tuple)):
        flat = []
        for item in images:
            if isinstance(item, (list, tuple)):
                flat += list(item)
            elif (isinstance(item, np.ndarray) or _is_tensor(item)) and item.ndim == 4:
                flat += list(item)
            else:
                flat.append(item)
        if flat:
            return flat
        raise InputError("images is empty: pass at least one image")
    raise InputError(
        f"images must be a PIL image, a NumPy array, a torch tensor, a file path, or a list of "
        f"them; found {type(images).__name__}"
    )


def _as_working(image, i: int, convert: bool | None, data_format: str | None):
    """A PIL image or an (H, W, C) array, converted to RGB when asked (or needed)."""
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        image = _open(image, i)
    if _is_pil(image):
        if 0 in image.size:
            raise InputError(f"image {i} is empty: size {image.size[0]}x{image.size[1]}")
        if convert is False:
            return _as_hwc(np.asarray(image), i, None)
        if image.mode == "RGB" and (convert is None or image.info.get("transparency") is None):
            return image  # nothing to convert; the reference's copy is skipped
        return _pil_to_rgb(image, Image)
    if _is_tensor(image):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise InputError(
            f"image {i} is a {type(image).__name__}; expected a PIL image, a NumPy array, a torch "
            f"tensor or a file path"
        )
    array = _as_hwc(image, i, data_format)
    if convert is False or array.shape[2] == 3:
        return array
    return _array_to_rgb(array, i)


def _open(path, i: int):
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image {i}: the file {path} does not exist")
    try:
        with Image.open(path) as im:
            im.load()
            # As transformers' load_image: camera orientation applied, alpha dropped.
            return ImageOps.exif_transpose(im).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"image {i}: {path} is not an image Pillow can read ({e})") from None


def _pil_to_rgb(image, Image):
    # Transparent pixels become white, as transformers' convert_to_rgb does.
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _as_hwc(array: np.ndarray, i: int, data_format: str | None) -> np.ndarray:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise InputError(f"image {i} has shape {array.shape}: expected (H, W), (H, W, C) or (C, H, W)")
    if 0 in array.shape:
        raise InputError(f"image {i} has shape {array.shape}: every dimension must be > 0")
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputError(f"image {i} has dtype {array.dtype}: expected uint8 or float")
    if data_format is None:  # as transformers infers it: channels first when both could be
        if array.shape[0] in CHANNELS:
            data_format = "channels_first"
        elif array.shape[2] in CHANNELS:
            data_format = "channels_last"
        else:
            raise InputError(f"image {i} has shape {array.shape}: found no channel axis of size 1, 3 "
                             f"or 4 first or last; pass input_data_format= if the layout is unusual")
    if data_format == "channels_first":
        array = array.transpose(1, 2, 0)
    if array.shape[2] not in CHANNELS:
        raise InputError(f"image {i} has {array.shape[2]} channels, expected 1, 3 or 4")
    return array


def _array_to_rgb(array: np.ndarray, i: int) -> np.ndarray:
    channels = array.shape[2]
    if channels == 1:
        return np.repeat(array, 3, axis=2)
    if channels != 4:
        raise InputError(f"image {i} has {channels} channels; RGB conversion takes 1, 3 or 4")
    integer = np.issubdtype(array.dtype, np.integer)
    if not integer and (array.min() < 0 or array.max() > 1):
        raise InputError(f"image {i}: a float RGBA image must hold values in [0, 1], "
                         f"found [{array.min()}, {array.max()}]")
    white = 255 if integer else 1.0
    alpha = array[..., 3:4] / white
    rgb = alpha * array[..., :3] + (1 - alpha) * white   # onto white, as transformers does
    return np.round(rgb).astype(array.dtype) if integer else rgb.astype(array.dtype)


# -- resize and crop ----------------------------------------------------------------------

def output_size(height: int, width: int, size: dict[str, int]) -> tuple[int, int]:
    """(height, width) after resizing, by the rules of transformers' PIL backend."""
    if "height" in size:
        return size["height"], size["width"]
    if "max_height" in size:
        scale = min(size["max_height"] / height, size["max_width"] / width)
        return int(height * scale), int(width * scale)
    short_target = size["shortest_edge"]
    if "longest_edge" in size:
        return _shortest_longest(height, width, short_target, size["longest_edge"])
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = short_target, int(short_target * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _shortest_longest(height: int, width: int, size: int, max_size: int) -> tuple[int, int]:
    raw = None
    lo, hi = float(min(height, width)), float(max(height, width))
    if hi / lo * size > max_size:
        raw = max_size * lo / hi
        size = int(round(raw))
    if (height <= width and height == size) or (width <= height and width == size):
        return height, width
    if width < height:
        return (int(raw * height / width) if raw is not None else int(size * height / width)), size
    return size, (int(raw * width / height) if raw is not None else int(size * width / height))


def _resize(work, plan: _Plan, i: int):
    """Resize with Pillow; returns (uint8 or float (H, W, C) array, scale already applied)."""
    from PIL import Image

    prescale = None
    if plan.size is None:
        return (_pixels(work) if _is_pil(work) else work), None
    if not _is_pil(work):
        work, prescale = _to_uint8_for_pil(work, i)
        work = Image.fromarray(work[:, :, 0] if work.shape[2] == 1 else work)
    h, w = output_size(work.height, work.width, plan.size)
    if h <= 0 or w <= 0:
        raise InputError(f"image {i} ({work.height}x{work.width}) resizes to {h}x{w} with size={plan.size}")
    return _pixels(work.resize((w, h), resample=plan.resample)), prescale


def _pixels(image) -> np.ndarray:
    """(H, W, C) uint8 view of a PIL image. RGB is read as Pillow stores it (RGBX, 4 bytes a
    pixel), which is about twice as fast as packing it to 3 bytes; the 4th is ignored."""
    if image.mode == "RGB":
        buffer = np.frombuffer(image.tobytes("raw", "RGBX"), np.uint8)
        return buffer.reshape(image.height, image.width, 4)[:, :, :3]
    array = np.asarray(image)
    return array[:, :, None] if array.ndim == 2 else array


def _to_uint8_for_pil(array: np.ndarray, i: int):
    """8-bit pixels for Pillow as the reference makes them: float images holding whole numbers
    in [0, 255] are cast; floats in [0, 1] are scaled by 255 and truncated (and the result is
    divided by 255 again after resizing)."""
    if array.dtype == np.uint8:
        return array, None
    if np.allclose(array, array.astype(int)):
        if array.min() < 0 or array.max() > 255:
            raise InputError(f"image {i} holds values in [{array.min()}, {array.max()}]; expected [0, 255]")
        return array.astype(np.uint8), None
    if array.min() < 0 or array.max() > 1:
        raise InputError(f"image {i} is float with values in [{array.min()}, {array.max()}]; expected "
                         f"[0, 1], or whole numbers in [0, 255]")
    return (array.astype(np.float64) * 255).astype(np.float32).astype(np.uint8), 1 / 255


def _center_crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop the middle; a side smaller than the crop is padded with zeros (as the reference)."""
    h, w = array.shape[:2]
    top, left = (h - height) // 2, (w - width) // 2
    if top >= 0 and left >= 0:
        return array[top:top + height, left:left + width]
    out = np.zeros((height, width, array.shape[2]), dtype=array.dtype)
    src_top, src_left = max(top, 0), max(left, 0)
    dst_top, dst_left = max(-top, 0), max(-left, 0)
    rows, cols = min(h, height), min(w, width)
    out[dst_top:dst_top + rows, dst_left:dst_left + cols] = array[src_top:src_top + rows, src_left:src_left + cols]
    return out


# -- rescale + normalize ------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def _lookup_table(prescale, rescale, mean, std) -> np.ndarray:
    """(C, 256) float32: each 8-bit value through the reference's exact steps."""
    values = np.arange(256, dtype=np.uint8)[None, :]
    table = _affine(values, prescale, rescale, mean, std)
    return np.ascontiguousarray(np.broadcast_to(table, (len(mean) if mean else 1, 256)))


def _affine(x: np.ndarray, prescale, rescale, mean, std) -> np.ndarray:
    """Rescale in float64 then float32, normalize in float32: the reference's arithmetic.
    `x` is (C, N) or channels-first; mean/std broadcast over the first axis."""
    for scale in (prescale, rescale):
        if scale is not None:
            x = (x.astype(np.float64) * scale).astype(np.float32)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if mean is not None:
        shape = (-1,) + (1,) * (x.ndim - 1)
        x = (x - np.array(mean, x.dtype).reshape(shape)) / np.array(std, x.dtype).reshape(shape)
    return x.astype(np.float32, copy=False)


_POOLS: dict[tuple[int, int], Any] = {}


def _run(fn, n: int, threads: int) -> None:
    """fn(0) inline (it sizes the output), then fn(1..n-1) on a thread pool."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"num_threads must be a positive int, found {threads!r}")
    fn(0)
    if threads == 1 or n < 4:
        for i in range(1, n):
            fn(i)
        return
    from concurrent.futures import ThreadPoolExecutor

    key = (os.getpid(), threads)  # a forked worker (DataLoader) makes its own pool
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix="loom-image")
    for _ in _POOLS[key].map(fn, range(1, n)):
        pass


class _Output:
    """Collects (C, H, W) float32 results, writing straight into one batch array when stacked."""

    def __init__(self, n: int, stack: bool):
        self.n, self.stack = n, stack
        self.batch: np.ndarray | None = None
        self.items: list[np.ndarray | None] = [None] * n

    def _slot(self, i: int, shape: tuple[int, ...]) -> np.ndarray:
        if not self.stack:
            return np.empty(shape, np.float32)
        if self.batch is None:
            self.batch = np.empty((self.n, *shape), np.float32)
        elif self.batch.shape[1:] != shape:
            raise InputError(
                f"cannot stack the images into one array: image {i} is {shape}, image 0 is "
                f"{self.batch.shape[1:]} (set do_resize / crop to one size, or return_tensors=None)"
            )
        return self.batch[i]

    def add(self, i: int, work: np.ndarray, plan: _Plan, prescale) -> None:
        h, w, c = work.shape
        norm = plan.normalize(c)
        mean, std = norm if norm is not None else (None, None)
        out = self._slot(i, (c, h, w))
        if work.dtype == np.uint8:
            table = _lookup_table(prescale, plan.rescale, mean, std)
            for ch in range(c):
                np.take(table[min(ch, len(table) - 1)], work[:, :, ch], out=out[ch], mode="clip")
        else:
            out[...] = _affine(work.transpose(2, 0, 1), prescale, plan.rescale, mean, std)
        if not self.stack:
            self.items[i] = out

    def result(self, channels_last: bool = False):
        if not channels_last:
            return self.batch if self.stack else self.items
        if self.stack:
            return np.ascontiguousarray(self.batch.transpose(0, 2, 3, 1))
        return [np.ascontiguousarray(x.transpose(1, 2, 0)) for x in self.items]


__all__ = [
    "ImageProcessor", "BatchFeature", "PREPROCESSOR_FILE", "output_size", "load_image_processor_dict",
    "image_processor_class_name", "NEAREST", "LANCZOS", "BILINEAR", "BICUBIC", "BOX", "HAMMING",
    "IMAGENET_STANDARD_MEAN", "IMAGENET_STANDARD_STD", "IMAGENET_DEFAULT_MEAN", "IMAGENET_DEFAULT_STD",
    "OPENAI_CLIP_MEAN", "OPENAI_CLIP_STD",
]
