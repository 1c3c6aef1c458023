"""AdamW with weight decay on 2-D weights only, and the learning-rate schedules.

Schedules are `LambdaLR` over picklable `functools.partial` factors, so their state saves
and restores with the checkpoint like any scheduler's.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from ..errors import ConfigError


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: 2-D weights (matrices, embeddings) decay; biases and norms do not."""
    decay, no_decay, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:  # tied weights appear once
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def create_optimizer(model: nn.Module, args, sharded: bool = False) -> torch.optim.AdamW:
    """AdamW; the fused kernel (one pass over all tensors; CPU and CUDA since torch 2.4) when the
    parameters allow it, else the multi-tensor one (sharded DTensor parameters)."""
    groups = parameter_groups(model, args.weight_decay)
    common = dict(lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)
    if not sharded:
        try:
            return torch.optim.AdamW(groups, fused=True, **common)
        except (RuntimeError, TypeError):  # a device or dtype the fused kernel does not take
            pass
    return torch.optim.AdamW(groups, foreach=True, **common)


def _linear(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def _cosine(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def _constant(step: int, warmup: int, total: int) -> float:
    return 1.0


def _constant_with_warmup(step: int, warmup: int, total: int) -> float:
    return step / max(1, warmup) if step < warmup else 1.0


SCHEDULES = {"linear": _linear, "cosine": _cosine, "constant": _constant,
             "constant_with_warmup": _constant_with_warmup}


def get_scheduler(name: str, optimizer: torch.optim.Optimizer, num_warmup_steps: int,
                  num_training_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A learning-rate schedule by name: factor of the base rate at each optimizer step."""
    if name not in SCHEDULES:
        raise ConfigError(f"lr_scheduler_type must be one of {sorted(SCHEDULES)}, found {name!r}")
    factor = functools.partial(SCHEDULES[name], warmup=num_warmup_steps, total=num_training_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def create_scheduler(optimizer: torch.optim.Optimizer, args, num_training_steps: int):
    return get_scheduler(args.lr_scheduler_type, optimizer, args.warmup_for(num_training_steps),
                         num_training_steps)


__all__ = ["create_optimizer", "create_scheduler", "get_scheduler", "parameter_groups"]
