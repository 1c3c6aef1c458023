"""ViT's image processor: a square bilinear resize to 224x224, pixels mapped to [-1, 1]."""

from __future__ import annotations

from ...preprocessing.image import BILINEAR, IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD, ImageProcessor


class ViTImageProcessor(ImageProcessor):
    size = {"height": 224, "width": 224}
    resample = BILINEAR
    do_resize = True
    do_rescale = True
    do_normalize = True
    image_mean = IMAGENET_STANDARD_MEAN
    image_std = IMAGENET_STANDARD_STD


__all__ = ["ViTImageProcessor"]
