"""Whisper's log-mel features (Radford et al. 2022, arXiv:2212.04356), NumPy only.

Matches `transformers`' WhisperFeatureExtractor (both its torch and NumPy paths, within
1e-4): pad or trim to `chunk_length` seconds, centred STFT (periodic Hann window of `n_fft`,
hop `hop_length`, reflect padding), power spectrum, Slaney mel filters (0-8 kHz,
`feature_size` bins), log10 of max(mel, 1e-10), floor at the clip's maximum - 8, (x + 4) / 4,
last frame dropped. The FFT runs in float32 (as the reference's default torch path), a block
of frames at a time; frames made only of padding (most of a short clip's 30 s) are computed
once; clips run on `num_threads` threads (NumPy's FFT and BLAS release the GIL).

Differs from the reference: `attention_mask` is returned exactly when asked for (the call's
`return_attention_mask`, else the file's) and always per frame, where the reference returns
a per-sample mask when `do_normalize=True` or the file's `return_attention_mask=true` sets it
without the call asking; `device` is accepted and ignored (there is no torch path); features
of clips left at different lengths (`padding="do_not_pad"`) come back as a list instead of
failing; `do_normalize` with `padding_side="left"` normalises the clip's own samples (the
reference takes its statistics from the first samples of the padded clip, padding included,
and overwrites the clip's end); and the input rules of `loom.preprocessing.audio.as_clips`
apply (stereo averaged, integer PCM and NaN refused).
"""

from __future__ import annotations

import functools
import os
from typing import ClassVar

import numpy as np

from ...errors import ConfigError, InputError
from ...preprocessing.audio import (
    SequenceFeatureExtractor, _number, _positive_int, as_clips, mel_filter_bank, stft_mel_power, window_function,
)
from ...preprocessing.image import _run
from ...preprocessing.processor import BatchFeature, check_tensor_type

LOG_FLOOR = 1e-10      # mel power clamp before log10
DYNAMIC_RANGE = 8.0    # log10 units (80 dB) kept below each clip's maximum
MAX_FREQUENCY = 8000.0


@functools.lru_cache(maxsize=8)
def _filters(feature_size: int, n_fft: int, sampling_rate: int) -> np.ndarray:
    """(feature_size, n_fft // 2 + 1) float32 Slaney mel filters (the reference's matrix)."""
    bank = mel_filter_bank(1 + n_fft // 2, feature_size, 0.0, MAX_FREQUENCY, sampling_rate,
                           norm="slaney", mel_scale="slaney")
    return np.ascontiguousarray(bank.T, dtype=np.float32)


@functools.lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    return window_function(n_fft, "hann", periodic=True).astype(np.float32)


class WhisperFeatureExtractor(SequenceFeatureExtractor):
    """Raw speech at 16 kHz -> `input_features` (B, feature_size, chunk_length * 100)."""

    feature_size: int = 80
    sampling_rate: int = 16000
    hop_length: int = 160
    chunk_length: int = 30
    n_fft: int = 400
    padding_value: float = 0.0
    dither: float = 0.0
    return_attention_mask: bool = False
    FIELDS: ClassVar[tuple[str, ...]] = (*SequenceFeatureExtractor.FIELDS, "hop_length", "chunk_length", "n_fft",
                                         "dither")
    DERIVED: ClassVar[tuple[str, ...]] = ("n_samples", "nb_max_frames")
    model_input_names: ClassVar[list[str]] = ["input_features"]
    # Threads computing the clips of one call: the usable cores, at most 8. Never changes values.
    num_threads: int = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))

    def check(self) -> None:
        super().check()
        _positive_int(self, "hop_length", "chunk_length", "n_fft")
        _number(self, "dither", minimum=0.0)
        if self.sampling_rate < 2 * MAX_FREQUENCY:
            raise ConfigError(f"WhisperFeatureExtractor: sampling_rate must be >= {int(2 * MAX_FREQUENCY)} (its "
                              f"mel filters reach {int(MAX_FREQUENCY)} Hz), found {self.sampling_rate}")

    @property
    def n_samples(self) -> int:
        return self.chunk_length * self.sampling_rate

    @property
    def nb_max_frames(self) -> int:
        return self.n_samples // self.hop_length

    @property
    def mel_filters(self) -> np.ndarray:
        """(n_fft // 2 + 1, feature_size) float64, as the reference's attribute."""
        return mel_filter_bank(1 + self.n_fft // 2, self.feature_size, 0.0, MAX_FREQUENCY, self.sampling_rate,
                               norm="slaney", mel_scale="slaney")

    def __call__(self, raw_speech, truncation: bool = True, pad_to_multiple_of: int | None = None,
                 return_tensors: str | None = None, return_attention_mask: bool | None = None,
                 padding="max_length", max_length: int | None = None, sampling_rate: int | None = None,
                 do_normalize: bool | None = None, device: str | None = "cpu",
                 num_threads: int | None = None) -> BatchFeature:
        """Log-mel features of one clip or a batch (see `loom.preprocessing.audio.as_clips`).

        By default every clip is padded or trimmed to `n_samples` (30 s): 3000 frames.
        `padding="longest"` pads to the longest clip instead, `max_length=` (samples) sets the
        length. `do_normalize` scales each clip to zero mean and unit variance first.
        Returns `input_features` (B, feature_size, frames) float32 (a NumPy array, or a tensor
        with return_tensors="pt") and, when asked, `attention_mask` (B, frames) int32.
        """
        check_tensor_type(return_tensors)
        self.check_sampling_rate(sampling_rate)
        clips = as_clips(raw_speech)
        kept, lengths = self.padding_plan([len(c) for c in clips], padding, max_length or self.n_samples,
                                          truncation, pad_to_multiple_of)
        for i, n in enumerate(lengths):
            if n <= self.n_fft // 2:
                raise InputError(f"audio {i} is {n} samples long after padding; the STFT's reflect padding needs "
                                 f"more than n_fft // 2 = {self.n_fft // 2} (pad with padding='max_length')")
        frames = [n // self.hop_length for n in lengths]
        stacked = len(set(frames)) == 1
        features = np.empty((len(clips), self.feature_size, frames[0]), np.float32) if stacked else [None] * len(clips)

        def one(i: int) -> None:
            result = self._log_mel(clips[i][:kept[i]], lengths[i], frames[i], bool(do_normalize))
            features[i] = result

        _run(one, len(clips), self.num_threads if num_threads is None else num_threads)
        out = {"input_features": features}
        if self.return_attention_mask if return_attention_mask is None else return_attention_mask:
            masks = [self.sample_mask(k, n)[::self.hop_length][:f] for k, n, f in zip(kept, lengths, frames)]
            out["attention_mask"] = np.stack(masks) if stacked else masks
        return BatchFeature(out, tensor_type=return_tensors)

    def _log_mel(self, clip: np.ndarray, length: int, n_frames: int, normalize: bool) -> np.ndarray:
        """(feature_size, n_frames) features of one clip, padded to `length` samples here."""
        if normalize:  # as the reference: float32 statistics of the real samples, epsilon 1e-7
            clip = (clip - clip.mean()) / np.sqrt(clip.var() + 1e-7)
        signal, offset = self.pad_one(clip, length)
        constant_from = len(clip) if offset == 0 and len(clip) < length else None
        if self.dither:
            # Gaussian noise on the padded waveform, as the reference's default (torch) path
            signal = signal + np.float32(self.dither) * np.random.default_rng().standard_normal(length, np.float32)
            constant_from = None
        mel = stft_mel_power(signal, _window(self.n_fft), self.hop_length,
                             _filters(self.feature_size, self.n_fft, self.sampling_rate), n_frames,
                             constant_from=constant_from)
        log_spec = np.log10(np.maximum(mel, LOG_FLOOR, out=mel), out=mel)
        if n_frames:
            np.maximum(log_spec, log_spec.max() - DYNAMIC_RANGE, out=log_spec)
        log_spec += 4.0
        log_spec /= 4.0
        return log_spec


__all__ = ["WhisperFeatureExtractor"]
