"""`image-feature-extraction`: the last hidden state of a vision model, or with `pool=True`
its pooled output, as transformers gives them: per image a nested list (1, T, C) or (1, C)
(`return_tensors=True`: a torch tensor)."""

from __future__ import annotations

import torch

from ..errors import InputError
from .base import ImagePipeline, Row


class ImageFeatureExtractionPipeline(ImagePipeline):
    task = "image-feature-extraction"
    model_task = "base"
    defaults = {"pool": False, "return_tensors": False}

    def preprocess(self, items: list, p: dict) -> list[list[Row]]:
        return self.image_rows(items)

    def forward(self, batch, rows, p):
        out = self.model(**batch)
        if not p["pool"]:
            return {"features": out.last_hidden_state}
        if getattr(out, "pooler_output", None) is None:
            raise InputError(f"image-feature-extraction: {type(self.model).__name__} has no pooled"
                             " output (no pooler layer); call without pool=True")
        return {"features": out.pooler_output}

    def postprocess(self, item, rows: list[Row], p: dict):
        features = rows[0].out["features"][None]   # the leading 1 of transformers' format
        return torch.from_numpy(features) if p["return_tensors"] else features.tolist()


__all__ = ["ImageFeatureExtractionPipeline"]
