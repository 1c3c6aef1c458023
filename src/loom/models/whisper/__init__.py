"""Whisper: configuration, models, tokenizer, feature extractor, processor, and the task table
read by `Auto*` classes.

The config imports eagerly (no torch); model classes load with `modeling` on first use, the
preprocessors (NumPy only) with their own modules.
"""

import importlib

from .config import WhisperConfig

CONFIG_CLASS = WhisperConfig
# task -> class name in .modeling
TASKS = {
    "base": "WhisperModel",
    "speech-seq2seq": "WhisperForConditionalGeneration",
}
# role -> class name, read by AutoFeatureExtractor / AutoProcessor / AutoTokenizer
PREPROCESSORS = {
    "feature_extractor": "WhisperFeatureExtractor",
    "processor": "WhisperProcessor",
    "tokenizer": "WhisperTokenizer",
}
_MODULES = {
    "WhisperFeatureExtractor": ".feature_extraction",
    "WhisperProcessor": ".processor",
    "WhisperTokenizer": ".tokenization",
    **{name: ".modeling" for name in ("WhisperModel", "WhisperForConditionalGeneration", "WhisperPreTrainedModel",
                                       "WhisperEncoder", "WhisperDecoder")},
}

__all__ = ["WhisperConfig", *_MODULES]


def __getattr__(name: str):
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
