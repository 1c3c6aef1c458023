"""Text generation: `GenerationConfig` (torch-free), logits processors, stopping criteria,
decoding strategies, streamers and the `GenerationMixin` that gives causal LMs `generate()`.

Names load on first use, so importing this package does not import torch.
"""

import importlib

_LAZY = {
    "GenerationConfig": ".config",
    "GENERATION_CONFIG_NAME": ".config",
    "GenerationMixin": ".mixin",
    "GenerateOutput": ".decode",
    "LogitsProcessor": ".logits",
    "LogitsProcessorList": ".logits",
    "StoppingCriteria": ".stopping",
    "StoppingCriteriaList": ".stopping",
    "BaseStreamer": ".streamers",
    "TextStreamer": ".streamers",
    "TextIteratorStreamer": ".streamers",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
