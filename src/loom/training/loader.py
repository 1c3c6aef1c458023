"""Feeding the loop: dataset checks, the resumable sharded sampler, seeded batches.

The order of an epoch is a permutation drawn from (seed, epoch) alone, so a run resumed at
(epoch, batch) starts right there by slicing the permutation: the loader is never replayed.
Each rank takes every world_size-th index of the permutation, so N ranks with batch b see,
step by step, the same examples as one process with batch N*b. Fetching and collating one
batch run with the global RNGs seeded from (seed, epoch, batch, rank) and restored after,
so random collation (MLM masking) and random item transforms are identical in worker
processes, after a resume, and whatever else used the RNGs.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError

# Items scanned for missing inputs and out-of-range labels before training starts.
MAX_CHECKED_ITEMS = 10_000


# -- datasets -------------------------------------------------------------------------------

def forward_arguments(model) -> set[str]:
    params = inspect.signature(model.forward).parameters.values()
    return {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _keep_columns(model) -> set[str]:
    return forward_arguments(model) | {"label", "label_ids", "labels"}


def prepare_dataset(dataset, model, remove_unused_columns: bool, what: str):
    """A `datasets.Dataset` loses the columns forward does not take; others pass as they are.

    Items of any dataset lose those keys later, at collation (`ColumnFilter`).
    """
    if dataset is None:
        return None
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise InputError(f"{what} must be a map-style dataset (a torch Dataset, a list of dicts or a "
                         f"datasets.Dataset) with __len__ and __getitem__, found {type(dataset).__name__}")
    columns = getattr(dataset, "column_names", None)
    if remove_unused_columns and isinstance(columns, list) and hasattr(dataset, "remove_columns"):
        unused = [c for c in columns if c not in _keep_columns(model)]
        if unused:
            dataset = dataset.remove_columns(unused)
    return dataset


class ColumnFilter:
    """Drops the keys of each item that the model's forward does not take."""

    def __init__(self, model, enabled: bool):
        self.keep = _keep_columns(model) if enabled else None

    def __call__(self, item):
        if self.keep is None or not isinstance(item, Mapping):
            return item
        return {k: v for k, v in item.items() if k in self.keep}


def check_dataset(dataset, model, what: str) -> None:
    """Clear errors before any step: empty set, items that are not dicts or lack the model's
    inputs, labels outside the model's classes."""
    n = len(dataset)
    if n == 0:
        raise InputError(f"{what} is empty: it has no items to train or evaluate on")
    takes = forward_arguments(model)
    inputs = [name for name in (getattr(model, "main_input_name", "input_ids"), "inputs_embeds") if name in takes]
    n_classes = class_count(model)
    for i in range(min(n, MAX_CHECKED_ITEMS)):
        item = dataset[i]
        if not isinstance(item, Mapping):
            raise InputError(f"{what}[{i}] must be a dict of fields, found {type(item).__name__}")
        if inputs and not any(k in item for k in inputs):
            raise InputError(f"{what}[{i}] has none of the model's inputs {inputs}: found keys "
                             f"{sorted(item)}; tokenize the text first (input_ids=...)")
        label = next((item[k] for k in ("labels", "label", "label_ids") if k in item), None)
        if label is not None:  # labels a collator makes (language modelling) are checked in a batch
            check_label_range(label, n_classes, f"{what}[{i}]")


def class_count(model) -> tuple[int | None, int | None]:
    """(classes of a sequence label, classes of a token label) the model can score."""
    config = getattr(model, "config", None)
    seq = getattr(config, "num_labels", None)
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    token = out.weight.shape[0] if out is not None else seq
    return seq, token


def check_label_range(label, n_classes, where: str) -> None:
    a = np.asarray(label.tolist() if isinstance(label, torch.Tensor) else label)
    if a.dtype.kind not in "iu":
        return  # regression and multi-label targets are floats: any value is fine
    limit = n_classes[0] if a.ndim == 0 else n_classes[1]
    if limit is None or (a.ndim == 0 and limit == 1):
        return
    bad = a[(a != -100) & ((a < 0) | (a >= limit))]
    if bad.size:
        raise InputError(f"{where} has label {bad.flat[0]} outside the model's {limit} classes "
                         f"[0, {limit}) (-100 marks ignored tokens); check num_labels / the label column")


# -- order and position -----------------------------------------------------------------------

@dataclass
class EpochPlan:
    """Per-rank batch counts of one epoch and the optimizer steps they make."""
    dataset_size: int
    batch_size: int
    world_size: int
    accumulation: int
    drop_last: bool

    @property
    def samples_per_rank(self) -> int:
        return math.ceil(self.dataset_size / self.world_size)

    @property
    def batches(self) -> int:
        n = self.samples_per_rank
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def steps(self) -> int:
        return math.ceil(self.batches / self.accumulation)


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    if not shuffle:
        return list(range(n))
    g = torch.Generator().manual_seed(seed + epoch)
    return torch.randperm(n, generator=g).tolist()


def rank_indices(order: list[int], rank: int, world_size: int, pad: bool) -> list[int]:
    """Every world_size-th index from `rank`; padded with the first indices so every rank has
    the same count (training keeps ranks in step; evaluation passes pad=False)."""
    if pad and len(order) % world_size:
        order = order + order[: world_size - len(order) % world_size]
    return order[rank::world_size]


def batch_seed(seed: int, epoch: int, batch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch + 1, batch, rank]).generate_state(1)[0])


class BatchSampler:
    """Yields (batch seed, [indices]) of one rank for one epoch, from batch `start` on."""

    def __init__(self, indices: list[int], batch_size: int, drop_last: bool, seed: int,
                 epoch: int, rank: int, start: int = 0):
        self.indices, self.batch_size, self.drop_last = indices, batch_size, drop_last
        self.seed, self.epoch, self.rank, self.start = seed, epoch, rank, start

    def __len__(self) -> int:
        n = len(self.indices)
        total = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        return max(0, total - self.start)

    def __iter__(self):
        b = self.batch_size
        for i in range(self.start, self.start + len(self)):
            yield batch_seed(self.seed, self.epoch, i, self.rank), self.indices[i * b:(i + 1) * b]


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block with python, numpy and torch (CPU) RNGs seeded; restore them after."""
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])


class SeededBatches(torch.utils.data.Dataset):
    """Fetches and collates a (seed, indices) batch with the RNGs seeded from the seed, so
    item transforms and random collation are repeatable; yields (indices, batch)."""

    def __init__(self, dataset, collator, column_filter: ColumnFilter):
        self.dataset, self.collator, self.column_filter = dataset, collator, column_filter

    def __len__(self):
        return len(self.dataset)

    def __getitems__(self, key):
        seed, indices = key
        with seeded(seed):
            return indices, self.collator([self.column_filter(self.dataset[i]) for i in indices])


def _collated(batch):
    return batch


def make_loader(dataset, collator, column_filter, sampler: BatchSampler, num_workers: int,
                pin_memory: bool) -> torch.utils.data.DataLoader:
    # A private generator: creating the iterator must not draw from the global RNG, which
    # the loop's dropout uses and a resume restores.
    return torch.utils.data.DataLoader(
        SeededBatches(dataset, collator, column_filter), batch_sampler=sampler,
        collate_fn=_collated, num_workers=num_workers, pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(0), persistent_workers=False,
    )


__all__ = ["prepare_dataset", "check_dataset", "EpochPlan", "BatchSampler", "make_loader"]
