"""`text-classification` (alias `sentiment-analysis`): labels and scores of a text or a text
pair (`{"text": ..., "text_pair": ...}`).

Outputs are transformers': with no `top_k`, the best label as `{"label", "score"}` (a one-item
list for a single text); `top_k=k` gives the k best per input, `top_k=None` all of them,
best first. `function_to_apply` is "softmax", "sigmoid" or "none", by default chosen from
the config's problem_type and num_labels. `long_inputs="window"` averages the logits of
overlapping windows before the function is applied.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import Pipeline, Row, check_text, check_top_k, sigmoid, softmax

FUNCTIONS = {"softmax": softmax, "sigmoid": sigmoid, "none": lambda x: x}
LEGACY = "best label only"   # top_k not given: transformers' one-dict format


class TextClassificationPipeline(Pipeline):
    task = "text-classification"
    model_task = "sequence-classification"
    input_kind = "a str or a dict {'text': str, 'text_pair': str}"
    defaults = {"top_k": LEGACY, "function_to_apply": None, "long_inputs": "truncate",
                "stride": None, "max_length": None}

    def __call__(self, inputs=None, /, **kwargs):
        if inputs is None and "inputs" in kwargs:
            inputs = kwargs.pop("inputs")
        result = super().__call__(inputs, **kwargs)
        legacy = kwargs.get("top_k", self.params["top_k"]) == LEGACY
        return [result] if legacy and isinstance(inputs, str) else result

    def check_params(self, params: dict) -> None:
        super().check_params(params)
        if params.get("top_k", LEGACY) != LEGACY:
            check_top_k(params["top_k"], allow_none=True)
        check_function(params)

    def check_input(self, item, where: str):
        if isinstance(item, dict):
            if "text" not in item or not set(item) <= {"text", "text_pair"}:
                raise InputError(f"{self.task}: {where} must be {self.input_kind}, found a dict"
                                 f" with keys {sorted(item)}")
            check_text(item["text"], f"{where}['text']", self.task)
            if item.get("text_pair") is not None:
                check_text(item["text_pair"], f"{where}['text_pair']", self.task)
            return item
        return check_text(item, where, self.task)

    def preprocess(self, items: list, p: dict) -> list[list[Row]]:
        kw = dict(long_inputs=p["long_inputs"], stride=p["stride"], max_length=p["max_length"])
        pairs = [i for i, x in enumerate(items) if isinstance(x, dict) and x.get("text_pair")]
        singles = [i for i in range(len(items)) if i not in set(pairs)]
        groups: list = [None] * len(items)
        text = [x["text"] if isinstance(x, dict) else x for x in items]
        if singles:
            for i, windows in zip(singles, self.encode([text[i] for i in singles], **kw)):
                groups[i] = windows
        if pairs:
            second = [items[i]["text_pair"] for i in pairs]
            for i, windows in zip(pairs, self.encode([text[i] for i in pairs], second, **kw)):
                groups[i] = windows
        return [[Row.from_encoding(e) for e in windows] for windows in groups]

    def forward(self, batch, rows, p):
        return {"logits": self.model(**batch).logits}

    def postprocess(self, item, rows: list[Row], p: dict):
        logits = np.mean([r.out["logits"] for r in rows], axis=0)   # windows: mean of logits
        scores = FUNCTIONS[p["function_to_apply"] or default_function(self.model.config)](logits)
        labels = self.model.config.id2label
        if p["top_k"] == LEGACY:
            best = int(scores.argmax())
            return {"label": labels[best], "score": float(scores[best])}
        ranked = sorted(({"label": labels[i], "score": float(s)} for i, s in enumerate(scores)),
                        key=lambda d: -d["score"])
        return ranked if p["top_k"] is None else ranked[:p["top_k"]]


def default_function(config) -> str:
    """The score function a classifier's config implies, as in transformers."""
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


def check_function(params: dict) -> None:
    fn = params.get("function_to_apply")
    if fn is not None:
        name = str(getattr(fn, "value", fn)).lower()   # transformers' enum works too
        if name not in FUNCTIONS:
            raise InputError(f"function_to_apply must be one of {sorted(FUNCTIONS)}, found {fn!r}")
        params["function_to_apply"] = name


__all__ = ["TextClassificationPipeline", "FUNCTIONS", "default_function", "check_function"]
