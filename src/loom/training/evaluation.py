"""Streaming evaluation: the loss is reduced batch by batch; predictions are kept (on CPU)
only when metrics or `predict()` need them, and put back in dataset order across ranks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .data import IGNORE_INDEX

# Output fields that are never predictions.
_NOT_PREDICTIONS = ("loss", "hidden_states", "attentions", "past_key_values")
# Batch keys that hold the targets of a head.
LABEL_KEYS = ("labels", "start_positions", "end_positions")


@dataclass
class EvalPrediction:
    """What `compute_metrics` receives: NumPy predictions and labels, in dataset order.

    A head with one output gives an array; with several (question answering), a tuple.
    Unpacks as `predictions, label_ids = eval_pred`.
    """
    predictions: np.ndarray | tuple[np.ndarray, ...]
    label_ids: np.ndarray | tuple[np.ndarray, ...] | None

    def __iter__(self):
        return iter((self.predictions, self.label_ids))

    def __getitem__(self, i):
        return (self.predictions, self.label_ids)[i]


@dataclass
class PredictionOutput:
    predictions: np.ndarray | tuple[np.ndarray, ...]
    label_ids: np.ndarray | tuple[np.ndarray, ...] | None
    metrics: dict[str, float]


def predictions_of(output) -> tuple[torch.Tensor, ...]:
    """The prediction tensors of a model output (logits, or start/end logits, ...)."""
    if isinstance(output, torch.Tensor):
        return (output,)
    if hasattr(output, "items"):
        return tuple(v for k, v in output.items() if k not in _NOT_PREDICTIONS and isinstance(v, torch.Tensor))
    return tuple(v for v in output[1:] if isinstance(v, torch.Tensor))


class Accumulator:
    """Sums the loss weighted by label count; keeps predictions and labels when asked."""

    def __init__(self, keep: bool):
        self.keep = keep
        self.loss_sum = 0.0
        self.count = 0
        self.indices: list[int] = []
        self.predictions: list[tuple[np.ndarray, ...]] = []
        self.labels: list[tuple[np.ndarray, ...]] = []

    def add(self, indices, loss: torch.Tensor | None, count: int, preds, labels) -> None:
        if loss is not None and count:
            self.loss_sum += float(loss.detach().float()) * count
            self.count += count
        if self.keep:
            self.indices.extend(int(i) for i in indices)
            self.predictions.append(tuple(_numpy(p) for p in preds))
            if labels:
                self.labels.append(tuple(_numpy(t) for t in labels))

    def part(self) -> dict[str, Any]:
        return {"indices": self.indices, "predictions": self.predictions, "labels": self.labels}


def _numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    return (t.float() if t.dtype in (torch.bfloat16, torch.float16) else t).numpy()


def concat_padded(arrays: list[np.ndarray], pad_value=IGNORE_INDEX) -> np.ndarray:
    """Concatenate on axis 0; arrays whose axis 1 differs (token logits of batches padded to
    different lengths) are first padded to the longest with `pad_value`, as HF does."""
    if not arrays:
        return np.zeros((0,))
    if arrays[0].ndim < 2 or len({a.shape[1] for a in arrays}) == 1:
        return np.concatenate(arrays, axis=0)
    width = max(a.shape[1] for a in arrays)
    out = []
    for a in arrays:
        pad = [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
        out.append(np.pad(a, pad, constant_values=pad_value))
    return np.concatenate(out, axis=0)


def assemble(parts: list[dict[str, Any]]) -> tuple[Any, Any]:
    """Merge the ranks' parts into (predictions, labels) in dataset order."""
    indices = [i for p in parts for i in p["indices"]]
    order = np.argsort(np.asarray(indices, dtype=np.int64), kind="stable")
    batches = [b for p in parts for b in p["predictions"]]
    label_batches = [b for p in parts for b in p["labels"]]
    return _merge(batches, order), (_merge(label_batches, order) if label_batches else None)


def _merge(batches: list[tuple[np.ndarray, ...]], order: np.ndarray):
    fields = [concat_padded([b[i] for b in batches])[order] for i in range(len(batches[0]))]
    return fields[0] if len(fields) == 1 else tuple(fields)


__all__ = ["EvalPrediction", "PredictionOutput"]
