"""Activation functions by the names config.json files use (`hidden_act`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import ACTIVATION_NAMES, check_activation


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    # GPT-2's "gelu_new": the tanh approximation of GELU.
    return F.gelu(x, approximate="tanh")


def gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    # CLIP's approximation: x * sigmoid(1.702 x).
    return x * torch.sigmoid(1.702 * x)


def gelu_python(x: torch.Tensor) -> torch.Tensor:
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_fast,
    "gelu_python": gelu_python,
    "quick_gelu": quick_gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


assert set(ACTIVATIONS) == set(ACTIVATION_NAMES)


def get_activation(name: str):
    check_activation(name)
    return ACTIVATIONS[name]
