"""Numerics shared by two or more models: attention, masks, activations, pruning.

This package's `__init__` stays torch-free so that configs can validate against it.
"""

# `hidden_act` values loom implements (loom.nn.activations maps each to a function).
ACTIVATION_NAMES = (
    "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_python", "quick_gelu",
    "relu", "silu", "swish", "tanh", "sigmoid",
)


def check_activation(name) -> None:
    from ..errors import ConfigError

    if name not in ACTIVATION_NAMES:
        raise ConfigError(
            f"hidden_act={name!r} is not supported; choose one of {', '.join(sorted(ACTIVATION_NAMES))}"
        )
