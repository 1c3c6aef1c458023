"""Turning raw text, images and audio into arrays. NumPy only; nothing here imports torch.

Names load on first use (PEP 562), so `import loom.preprocessing` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BatchEncoding": "tokenizer",
    "PreTrainedTokenizerFast": "tokenizer",
    "Tokenizer": "tokenizer",
    "ImageProcessor": "image",
    "BatchFeature": "processor",
    "Processor": "processor",
    "ProcessorMixin": "processor",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = list(_EXPORTS)
