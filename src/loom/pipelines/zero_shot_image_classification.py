"""`zero-shot-image-classification`: rank labels chosen at call time with an image-text model
(CLIP): each label becomes the text `hypothesis_template.format(label)`, and the softmax over
the image-text similarities scores them. Output is transformers': per image a list of
`{"score", "label"}`, best first.
"""

from __future__ import annotations

from ..errors import InputError
from .base import ImagePipeline, Row, softmax


class ZeroShotImageClassificationPipeline(ImagePipeline):
    task = "zero-shot-image-classification"
    model_task = "zero-shot-image-classification"
    needs_tokenizer = True
    defaults = {"candidate_labels": None, "hypothesis_template": "This is a photo of {}."}

    def __call__(self, inputs=None, candidate_labels=None, /, **kwargs):
        if candidate_labels is not None:
            kwargs["candidate_labels"] = candidate_labels
        return super().__call__(inputs, **kwargs)

    def check_params(self, params: dict) -> None:
        labels = params.get("candidate_labels")
        if labels is not None and (isinstance(labels, str) or not isinstance(labels, (list, tuple))
                                   or not labels or not all(isinstance(x, str) and x for x in labels)):
            raise InputError(f"candidate_labels must be a non-empty list of str, found {labels!r}")
        template = params.get("hypothesis_template", "{}")
        if not isinstance(template, str) or template.format("x") == template:
            raise InputError(f"hypothesis_template must be a str with {{}} where the label goes,"
                             f" found {template!r}")

    def preprocess(self, items: list, p: dict) -> list[list[Row]]:
        if p["candidate_labels"] is None:
            raise InputError("zero-shot-image-classification needs candidate_labels=[...]")
        return self.image_rows(items)

    def forward(self, batch, rows, p):
        texts = [p["hypothesis_template"].format(x) for x in p["candidate_labels"]]
        enc = self.tokenizer(texts, padding=True, return_tensors="pt")
        text = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        return {"logits": self.model(**text, **batch).logits_per_image}   # (B, labels)

    def postprocess(self, item, rows: list[Row], p: dict) -> list[dict]:
        scores = softmax(rows[0].out["logits"])
        pairs = sorted(zip(scores.tolist(), p["candidate_labels"]), key=lambda x: -x[0])
        return [{"score": s, "label": label} for s, label in pairs]


__all__ = ["ZeroShotImageClassificationPipeline"]
