"""`zero-shot-classification`: rank labels chosen at call time with an NLI model.

Each candidate label becomes the hypothesis `hypothesis_template.format(label)` paired with
the text; the model's entailment logit scores it. Scores sum to one over the labels, or with
`multi_label=True` each label is scored on its own (entailment vs contradiction). Output is
transformers': `{"sequence", "labels", "scores"}`, best first.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, InputError
from .base import Pipeline, Row, softmax


class ZeroShotClassificationPipeline(Pipeline):
    task = "zero-shot-classification"
    model_task = "sequence-classification"
    defaults = {"candidate_labels": None, "hypothesis_template": "This example is {}.",
                "multi_label": False}

    def __init__(self, model, tokenizer=None, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        label2id = model.config.label2id or {}
        found = [i for label, i in label2id.items() if label.lower().startswith("entail")]
        if not found:
            raise ConfigError(f"zero-shot-classification needs an NLI model whose config label2id"
                              f" has an 'entailment' label; found {label2id}")
        self.entailment_id = found[0]

    def __call__(self, inputs=None, candidate_labels=None, /, **kwargs):
        if candidate_labels is not None:
            kwargs["candidate_labels"] = candidate_labels
        return super().__call__(inputs, **kwargs)

    def check_params(self, params: dict) -> None:
        labels = params.get("candidate_labels")
        if labels is not None:
            if isinstance(labels, str):   # "politics, sports" as in transformers
                labels = [x.strip() for x in labels.split(",") if x.strip()]
            if not isinstance(labels, (list, tuple)) or not labels or not all(
                    isinstance(x, str) and x.strip() for x in labels):
                raise InputError(f"candidate_labels must be a non-empty list of str, found {labels!r}")
            params["candidate_labels"] = list(labels)
        template = params.get("hypothesis_template", "{}")
        if not isinstance(template, str) or template.format("x") == template:
            raise InputError(f"hypothesis_template must be a str with {{}} where the label goes,"
                             f" found {template!r}")

    def preprocess(self, items: list[str], p: dict) -> list[list[Row]]:
        labels = p["candidate_labels"]
        if labels is None:
            raise InputError("zero-shot-classification needs candidate_labels=[...]")
        texts = [t for t in items for _ in labels]
        hypotheses = [p["hypothesis_template"].format(x) for _ in items for x in labels]
        try:   # cut the text, never the hypothesis
            windows = self.encode(texts, hypotheses, truncation="only_first")
        except InputError:   # the hypothesis alone is longer than the model takes
            windows = self.encode(texts, hypotheses, truncation="longest_first")
        rows = [Row.from_encoding(w[0]) for w in windows]
        n = len(labels)
        return [rows[i * n:(i + 1) * n] for i in range(len(items))]

    def forward(self, batch, rows, p):
        return {"logits": self.model(**batch).logits}

    def postprocess(self, text: str, rows: list[Row], p: dict) -> dict:
        logits = np.stack([r.out["logits"] for r in rows])   # (labels, classes)
        entail = self.entailment_id
        if p["multi_label"] or len(rows) == 1:
            contradiction = -1 if entail == 0 else 0
            scores = softmax(logits[:, [contradiction, entail]])[:, 1]
        else:
            scores = softmax(logits[:, entail])
        order = list(reversed(scores.argsort()))
        return {"sequence": text, "labels": [p["candidate_labels"][i] for i in order],
                "scores": [float(scores[i]) for i in order]}


__all__ = ["ZeroShotClassificationPipeline"]
