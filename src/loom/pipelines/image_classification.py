"""`image-classification`: the labels of an image, best first.

Output is transformers': per image the `top_k` (default 5, at most num_labels) dicts
`{"label", "score"}`; `function_to_apply` as in text-classification ("softmax", "sigmoid",
"none"; by default from the config's problem_type and num_labels).
"""

from __future__ import annotations

from .base import ImagePipeline, Row, check_top_k
from .text_classification import FUNCTIONS, check_function, default_function


class ImageClassificationPipeline(ImagePipeline):
    task = "image-classification"
    model_task = "image-classification"
    defaults = {"top_k": 5, "function_to_apply": None}

    def check_params(self, params: dict) -> None:
        if "top_k" in params:
            check_top_k(params["top_k"])
        check_function(params)

    def preprocess(self, items: list, p: dict) -> list[list[Row]]:
        return self.image_rows(items)

    def forward(self, batch, rows, p):
        return {"logits": self.model(**batch).logits}

    def postprocess(self, item, rows: list[Row], p: dict) -> list[dict]:
        config = self.model.config
        scores = FUNCTIONS[p["function_to_apply"] or default_function(config)](rows[0].out["logits"])
        ranked = sorted(({"label": config.id2label[i], "score": float(s)} for i, s in enumerate(scores)),
                        key=lambda d: -d["score"])
        return ranked[:p["top_k"]]


__all__ = ["ImageClassificationPipeline"]
