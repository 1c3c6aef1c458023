"""`automatic-speech-recognition`: speech to text with Whisper.

Inputs: an audio file path (WAV, FLAC... read with `soundfile`), the bytes of such a file, a
1-D float array sampled at the feature extractor's rate (a 2-D `(channels, samples)` array
is averaged to mono), `{"raw" or "array": samples, "sampling_rate": rate}`, or a list of
these. Output per input, as transformers': `{"text": ...}`, plus
`"chunks": [{"timestamp": (start, end), "text"}]` with `return_timestamps=True` (and each
chunk's `"language"` with `return_language=True`).

Audio longer than one window (30 s for Whisper) is cut into overlapping chunks:
`chunk_length_s` (default: the model's window when the audio is longer, logged once) and
`stride_length_s` (overlap on each side, default chunk_length_s / 6); the chunks' tokens are
joined where their overlaps agree (`loom.models.whisper.asr`). Chunks of all inputs are
batched together by `batch_size`. Every `generate()` argument (and Whisper's `language`,
`task`) is a call parameter; as in transformers, what neither the call nor the model's
generation config sets defaults to max_new_tokens=256 and num_beams=5. loom does not resample: audio at another rate is an error that
names both rates.
"""

from __future__ import annotations

import io
import os

import numpy as np
import torch

from ..errors import InputError
from .base import GeneratingPipeline, Row, with_generation_defaults

# As transformers' pipeline (after OpenAI's whisper): for what the model's generation config leaves unset.
PIPELINE_GENERATION_DEFAULTS = {"max_new_tokens": 256, "num_beams": 5}


class AutomaticSpeechRecognitionPipeline(GeneratingPipeline):
    generate_extras = GeneratingPipeline.generate_extras | {"language", "task"}
    task = "automatic-speech-recognition"
    model_task = "speech-seq2seq"
    needs_tokenizer = True
    needs_feature_extractor = True
    default_batch_size = 4
    input_kind = ("an audio file path, its bytes, a 1-D float array, or {'raw': array, "
                  "'sampling_rate': int}")
    defaults = {"return_timestamps": None, "return_language": False, "chunk_length_s": None,
                "stride_length_s": None}

    def __init__(self, model, tokenizer=None, *, feature_extractor=None, **kwargs):
        if feature_extractor is None:
            raise InputError(f"{self.task}: feature_extractor is None; pass feature_extractor= (a loom "
                             "feature extractor or the folder / Hub repo id of one)")
        self.feature_extractor = feature_extractor
        super().__init__(model, tokenizer, **kwargs)

    def check_params(self, params: dict) -> None:
        super().check_params(params)
        if params.get("return_timestamps") not in (None, True, False):
            raise InputError(f"{self.task}: return_timestamps must be True, False or None (segment times); "
                             f"found {params['return_timestamps']!r} (word timestamps are not supported)")
        for name in ("chunk_length_s", "stride_length_s"):
            value = params.get(name)
            values = value if isinstance(value, (list, tuple)) and name == "stride_length_s" else [value]
            if value is not None and not all(_number(v) and v >= 0 for v in values):
                raise InputError(f"{self.task}: {name} must be a number of seconds >= 0, found {value!r}")

    # -- inputs -------------------------------------------------------------------------------

    def is_single(self, inputs) -> bool:
        return isinstance(inputs, (str, os.PathLike, bytes, dict, np.ndarray, torch.Tensor))

    def check_input(self, item, where: str) -> np.ndarray:
        """The item as 1-D float32 samples at the feature extractor's rate."""
        from ..preprocessing.audio import as_clip, load_audio

        rate = self.feature_extractor.sampling_rate
        if item is None:
            raise InputError(f"{self.task}: {where} is None; expected {self.input_kind}")
        if isinstance(item, (str, os.PathLike)):
            if not str(item).strip():
                raise InputError(f"{self.task}: {where} is an empty string; expected an audio file path")
            if not os.path.isfile(item):
                raise InputError(f"{self.task}: {where}: the audio file {item} does not exist")
            return load_audio(item, sampling_rate=rate)[0]
        if isinstance(item, bytes):
            return _read_bytes(item, rate, where, self.task)
        if isinstance(item, dict):
            samples = item.get("raw", item.get("array"))
            if samples is None or "sampling_rate" not in item:
                raise InputError(f"{self.task}: {where} is a dict with keys {sorted(item)}; expected 'raw' (or "
                                 f"'array') and 'sampling_rate'")
            if item["sampling_rate"] != rate:
                raise InputError(f"{self.task}: {where} is sampled at {item['sampling_rate']} Hz but the feature "
                                 f"extractor expects {rate} Hz; loom does not resample: convert it first")
            item = samples
        if isinstance(item, (np.ndarray, torch.Tensor, list)):
            try:
                return as_clip(item, 0)
            except InputError as e:
                raise InputError(f"{self.task}: {where}: {str(e).removeprefix('audio 0 ')}") from None
        raise InputError(f"{self.task}: {where} must be {self.input_kind}, found {type(item).__name__}")

    # -- the three stages ---------------------------------------------------------------------

    def preprocess(self, items: list, p: dict) -> list[list[Row]]:
        fe = self.feature_extractor
        window = getattr(fe, "n_samples", None) or int(getattr(fe, "chunk_length", 30) * fe.sampling_rate)
        rows = []
        for audio in items:
            chunk_s = p["chunk_length_s"]
            if not chunk_s and len(audio) > window:
                chunk_s = window / fe.sampling_rate
                self.log_once("chunked", "%s: audio longer than %.0f s is transcribed in overlapping %.0f s "
                              "chunks (set chunk_length_s / stride_length_s to choose)", self.task, chunk_s, chunk_s)
            pieces = self._chunks(audio, chunk_s, p["stride_length_s"]) if chunk_s else [(audio, None)]
            features = fe([a for a, _ in pieces], sampling_rate=fe.sampling_rate, return_tensors="np")
            rows.append([Row(data={"input_features": f, "stride": s})
                         for f, (_, s) in zip(features["input_features"], pieces)])
        return rows

    def _chunks(self, audio: np.ndarray, chunk_s: float, stride_s) -> list[tuple[np.ndarray, tuple]]:
        """Overlapping pieces of `audio`, each with (its seconds, left overlap, right overlap)."""
        rate = self.feature_extractor.sampling_rate
        stride_s = chunk_s / 6 if stride_s is None else stride_s
        left_s, right_s = (stride_s, stride_s) if _number(stride_s) else stride_s
        size, left, right = (int(round(x * rate)) for x in (chunk_s, left_s, right_s))
        if size <= left + right:
            raise InputError(f"{self.task}: chunk_length_s={chunk_s} must be longer than the overlaps "
                             f"stride_length_s={stride_s} on both sides")
        pieces = []
        for start in range(0, len(audio), size - left - right):
            piece = audio[start:start + size]
            last = start + size >= len(audio)
            stride = (len(piece) / rate, (left if start else 0) / rate, (0 if last else right) / rate)
            if len(piece) > (left if start else 0):  # a piece must add audio past the previous one
                pieces.append((piece, stride))
            if last:
                break
        return pieces

    def collate(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        features = torch.from_numpy(np.stack([r.data["input_features"] for r in rows]))
        return {"input_features": features.to(self.device, self.model.dtype)}

    def forward(self, batch, rows, p):
        kwargs = {k: v for k, v in p.items() if k not in self.defaults}
        if p["return_timestamps"]:
            kwargs["return_timestamps"] = True
        kwargs = with_generation_defaults(self.model, kwargs, PIPELINE_GENERATION_DEFAULTS, self.tokenizer)
        sequences = self.model.generate(input_features=batch["input_features"], **kwargs).cpu().tolist()
        if p["return_language"]:  # generate drops the prompt: put each row's language token back
            languages = self._language_tokens(batch["input_features"], p.get("language"))
            sequences = [[lang] + ids for lang, ids in zip(languages, sequences)]
        return [{"tokens": ids} for ids in sequences]

    def _language_tokens(self, features, language) -> list[int]:
        """The language token of each row: the one asked for, else the one Whisper detects."""
        from ..models.whisper.generation import detect_language
        from ..models.whisper.languages import language_code

        gen = self.model.generation_config
        table = gen.extra.get("lang_to_id")
        if not table:
            raise InputError(f"{self.task}: return_language=True needs a multilingual Whisper (lang_to_id in "
                             "its generation config)")
        if language is not None:
            return [table[f"<|{language_code(language)}|>"]] * features.shape[0]
        return detect_language(self.model, features, gen).tolist()

    def postprocess(self, item, rows: list[Row], p: dict) -> dict:
        from ..models.whisper.asr import decode_asr

        outputs = [{"tokens": r.out["tokens"], **({"stride": r.data["stride"]} if r.data["stride"] else {})}
                   for r in rows]
        precision = self.feature_extractor.chunk_length / self.model.config.max_source_positions
        text, extra = decode_asr(self.tokenizer, outputs, return_timestamps=bool(p["return_timestamps"]),
                                 return_language=p["return_language"], time_precision=precision)
        return {"text": text, **extra}


def _read_bytes(data: bytes, rate: int, where: str, task: str) -> np.ndarray:
    try:
        import soundfile
    except ImportError:
        raise InputError(f"{task}: {where}: reading audio bytes needs the soundfile package "
                         "(pip install soundfile)") from None
    try:
        samples, found = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile's errors vary by format
        raise InputError(f"{task}: {where}: these bytes are not an audio file soundfile reads ({e})") from None
    if found != rate:
        raise InputError(f"{task}: {where} is sampled at {found} Hz but the feature extractor expects {rate} Hz; "
                         "loom does not resample: convert it first")
    if samples.shape[0] == 0:
        raise InputError(f"{task}: {where} holds no samples")
    return samples.mean(axis=1, dtype=np.float32)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


__all__ = ["AutomaticSpeechRecognitionPipeline"]
