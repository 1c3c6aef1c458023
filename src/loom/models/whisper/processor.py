"""`WhisperProcessor`: Whisper's feature extractor and tokenizer under one name, as
transformers' WhisperProcessor: `processor(audio=..., sampling_rate=16000)` gives
`input_features`, `processor(text=...)` the tokenizer's output, both together the features with
the text's ids as `labels`; `decode` / `batch_decode` go to the tokenizer. NumPy only.
"""

from __future__ import annotations

import os

from ...errors import InputError
from ...preprocessing.processor import PROCESSOR_FILE, Processor
from .feature_extraction import WhisperFeatureExtractor
from .tokenization import WhisperTokenizer

_HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token", "subfolder", "force_download")


class WhisperProcessor(Processor):
    PARTS = ("feature_extractor", "tokenizer")

    def __call__(self, audio=None, *, sampling_rate: int | None = None, text=None, return_tensors: str | None = None,
                 **kwargs):
        """Features of `audio` (one clip or a batch, at `sampling_rate`) and/or the tokens of
        `text`. Other keywords go to whichever part's call takes them (`padding=` to both)."""
        if audio is None and text is None:
            raise InputError("WhisperProcessor needs audio= and/or text=")
        called = {m: self.parts[p] for m, p, v in (("audio", "feature_extractor", audio), ("text", "tokenizer", text))
                  if v is not None}
        routed = self._route(kwargs, called)
        out = None
        if audio is not None:
            rate = {} if sampling_rate is None else {"sampling_rate": sampling_rate}
            out = self.feature_extractor(audio, return_tensors=return_tensors, **routed["audio"], **rate)
        if text is not None:
            encoding = self.tokenizer(text, return_tensors=return_tensors, **routed["text"])
            if out is None:
                return encoding
            out["labels"] = encoding["input_ids"]
        return out

    def get_decoder_prompt_ids(self, task: str | None = None, language: str | None = None, no_timestamps: bool = True):
        return self.tokenizer.get_decoder_prompt_ids(task=task, language=language, no_timestamps=no_timestamps)

    def get_prompt_ids(self, text: str, return_tensors: str | None = "np"):
        return self.tokenizer.get_prompt_ids(text, return_tensors=return_tensors)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs) -> WhisperProcessor:
        """Load preprocessor_config.json (features) and the tokenizer files of one folder or repo."""
        from ...hub import pin, resolve
        from ...io import read_json

        hub = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
        hub["revision"] = pin(path_or_repo_id, hub.get("revision"))  # every file from one commit
        fe_keys = set(WhisperFeatureExtractor.FIELDS)
        feature_extractor = WhisperFeatureExtractor.from_pretrained(
            path_or_repo_id, **{k: v for k, v in hub.items() if k != "force_download"},
            **{k: v for k, v in kwargs.items() if k in fe_keys})
        tokenizer = WhisperTokenizer.from_pretrained(
            path_or_repo_id, **hub, **{k: v for k, v in kwargs.items() if k not in fe_keys})
        processor = cls(feature_extractor=feature_extractor, tokenizer=tokenizer)
        path = resolve(path_or_repo_id, PROCESSOR_FILE, required=False, **hub)
        config = read_json(path, what="processor config") if path else {}
        processor.extra = {k: v for k, v in config.items()
                           if k not in ("processor_class", "feature_extractor", "tokenizer")}
        return processor


__all__ = ["WhisperProcessor"]
