"""T5's tokenizer pipeline as transformers' `T5Tokenizer` builds it. No torch import."""

from __future__ import annotations

import base64
import json

from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as _Backend

from ...preprocessing.tokenizer import _token_content


def rebuild_pipeline(backend: _Backend, config: dict) -> None:
    """transformers' T5Tokenizer rebuilds the pipeline around the file's Unigram model: only a
    SentencePiece `Precompiled` normalizer is kept, text is split on whitespace then marked
    with Metaspace, and `</s>` ends every sequence. Do the same, so that ids match."""
    spec = json.loads(backend.normalizer.__getstate__()) if backend.normalizer is not None else {}
    parts = spec.get("normalizers", []) if spec.get("type") == "Sequence" else [spec]
    charsmap = next((p["precompiled_charsmap"] for p in parts if p.get("type") == "Precompiled"), None)
    backend.normalizer = normalizers.Precompiled(base64.b64decode(charsmap)) if charsmap else None
    space = dict(replacement="\u2581", prepend_scheme="always", split=True)
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                     pre_tokenizers.Metaspace(**space)])
    backend.decoder = decoders.Metaspace(**space)
    eos = _token_content(config.get("eos_token"), "eos_token") or "</s>"
    if backend.token_to_id(eos) is None:
        backend.add_special_tokens([AddedToken(eos, special=True, normalized=False)])
    backend.post_processor = processors.TemplateProcessing(
        single=["$A", eos], pair=["$A", eos, "$B", eos], special_tokens=[(eos, backend.token_to_id(eos))])


__all__ = ["rebuild_pipeline"]
