"""CLIP's preprocessors: the image processor (bicubic shortest-edge resize to 224, center
crop, OpenAI's mean and std) and the processor pairing it with the tokenizer."""

from __future__ import annotations

from ...preprocessing.image import BICUBIC, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ImageProcessor
from ...preprocessing.processor import Processor


class CLIPImageProcessor(ImageProcessor):
    do_convert_rgb = True
    size = {"shortest_edge": 224}
    default_to_square = False
    resample = BICUBIC
    do_center_crop = True
    crop_size = {"height": 224, "width": 224}
    do_rescale = True
    do_normalize = True
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD


class CLIPProcessor(Processor):
    """`processor(text=[...], images=[...], padding=True, return_tensors="pt")` gives
    input_ids, attention_mask and pixel_values for `CLIPModel`."""

    PARTS = ("image_processor", "tokenizer")


__all__ = ["CLIPImageProcessor", "CLIPProcessor"]
