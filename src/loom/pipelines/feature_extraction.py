"""`feature-extraction` (token vectors, or one pooled vector per text) and
`sentence-similarity` (cosine of a source sentence with each candidate).

Without `pooling` the output is transformers' format: per text a nested list (1, T, C) of the
last hidden state. `pooling="mean"|"cls"|"max"` gives one vector (C,) per text, L2-normalised
with `normalize=True`: this is what sentence-transformers computes, and `SentenceEmbedder`
is a thin wrapper over it. `long_inputs="window"` pools each overlapping window and takes
the mean of the window vectors.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from .base import Pipeline, Row, check_text

POOLINGS = ("mean", "cls", "max")
RETURN_TENSORS = (False, True, "pt", "np")


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """One vector per row of `hidden` (B, T, C) over its real tokens (`mask` (B, T) is 1)."""
    if mode == "cls":   # the first real token, whichever side was padded
        return hidden[torch.arange(hidden.shape[0]), mask.argmax(1)]
    if mode == "max":
        return hidden.masked_fill(mask.unsqueeze(-1) == 0, torch.finfo(hidden.dtype).min).amax(1)
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors where attention_mask is 1: (B, T, C) -> (B, C)."""
    return pool(hidden, attention_mask, "mean")


def l2_normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


class FeatureExtractionPipeline(Pipeline):
    task = "feature-extraction"
    model_task = "base"
    token_outputs = ("token_embeddings",)
    defaults = {"pooling": None, "normalize": False, "long_inputs": "truncate", "stride": None,
                "max_length": None, "return_tensors": False}

    def check_params(self, params: dict) -> None:
        super().check_params(params)
        if params.get("pooling") not in (None, *POOLINGS):
            raise InputError(f"pooling must be None or one of {POOLINGS}, found {params['pooling']!r}")
        if params.get("return_tensors", False) not in RETURN_TENSORS:
            raise InputError(f"return_tensors must be one of {RETURN_TENSORS}, found"
                             f" {params['return_tensors']!r}")

    def preprocess(self, items: list[str], p: dict) -> list[list[Row]]:
        if p["pooling"] is None and p["long_inputs"] == "window":
            raise InputError("feature-extraction: long_inputs='window' pools the windows and"
                             " needs pooling='mean', 'cls' or 'max'")
        groups = self.encode(items, long_inputs=p["long_inputs"], stride=p["stride"],
                             max_length=p["max_length"])
        return [[Row.from_encoding(e) for e in windows] for windows in groups]

    def forward(self, batch, rows, p):
        hidden = self.model(**batch).last_hidden_state   # (B, T, C)
        if p["pooling"] is None:
            return {"token_embeddings": hidden}
        return {"embedding": pool(hidden, batch["attention_mask"], p["pooling"])}

    def postprocess(self, item, rows: list[Row], p: dict):
        if p["pooling"] is None:
            out = rows[0].out["token_embeddings"][None]   # (1, T, C) as in transformers
        else:
            out = self.pooled(rows, p)
        if p["return_tensors"] == "np":
            return out
        return torch.from_numpy(out) if p["return_tensors"] else out.tolist()

    def pooled(self, rows: list[Row], p: dict) -> np.ndarray:
        """One text's vector: the mean of its windows' pooled vectors, normalised if asked."""
        v = np.mean([r.out["embedding"] for r in rows], axis=0)
        return l2_normalize(v) if p.get("normalize") else v


class SentenceSimilarityPipeline(FeatureExtractionPipeline):
    """`{"source_sentence": s, "sentences": [c1, c2, ...]}` (or `pipe(s, sentences=[...])`)
    -> the cosine similarity of s with each candidate, in the candidates' order."""

    task = "sentence-similarity"
    input_kind = "a dict {'source_sentence': str, 'sentences': [str, ...]}"
    defaults = {"pooling": "mean", "long_inputs": "truncate", "stride": None, "max_length": None,
                "sentences": None}

    def __call__(self, inputs=None, /, **kwargs):
        sentences = kwargs.pop("sentences", None)
        if sentences is not None and (isinstance(inputs, str) or inputs is None):
            inputs = {"source_sentence": inputs, "sentences": sentences}
        return super().__call__(inputs, **kwargs)

    def check_params(self, params: dict) -> None:
        if params.get("pooling", "mean") is None:
            raise InputError(f"sentence-similarity needs a pooling, one of {POOLINGS}")
        super().check_params(params)

    def check_input(self, item, where: str) -> dict:
        if not isinstance(item, dict) or set(item) != {"source_sentence", "sentences"}:
            found = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise InputError(f"sentence-similarity: {where} must be {self.input_kind} (or a str"
                             f" with sentences=[...]), found {found}")
        check_text(item["source_sentence"], f"{where}['source_sentence']", self.task)
        candidates = item["sentences"]
        if isinstance(candidates, str) or not isinstance(candidates, (list, tuple)) or not candidates:
            raise InputError(f"sentence-similarity: {where}['sentences'] must be a non-empty list"
                             f" of str, found {candidates!r:.60}")
        for i, c in enumerate(candidates):
            check_text(c, f"{where}['sentences'][{i}]", self.task)
        return item

    def preprocess(self, items: list[dict], p: dict) -> list[list[Row]]:
        texts = [[it["source_sentence"], *it["sentences"]] for it in items]
        flat = [t for ts in texts for t in ts]
        groups = iter(self.encode(flat, long_inputs=p["long_inputs"], stride=p["stride"],
                                  max_length=p["max_length"]))
        return [[Row.from_encoding(e, text=k) for k in range(len(ts)) for e in next(groups)]
                for ts in texts]

    def postprocess(self, item, rows: list[Row], p: dict) -> list[float]:
        n = len(item["sentences"]) + 1
        vecs = np.stack([self.pooled([r for r in rows if r.data["text"] == k], p) for k in range(n)])
        vecs = l2_normalize(vecs)
        return (vecs[1:] @ vecs[0]).tolist()


__all__ = ["FeatureExtractionPipeline", "SentenceSimilarityPipeline", "pool", "mean_pool"]
