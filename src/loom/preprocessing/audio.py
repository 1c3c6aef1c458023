"""Audio feature extraction: waveforms in, the arrays a speech model takes out.

`FeatureExtractor` is the settings object (read from `preprocessor_config.json`, or the
`feature_extractor` entry of a `transformers` 5.x `processor_config.json`; unknown keys kept;
saved atomically with `feature_extractor_type`, so `transformers`' AutoFeatureExtractor reads
loom's files). `SequenceFeatureExtractor` adds the sequence settings (`feature_size`,
`sampling_rate`, `padding_value`, `padding_side`, `return_attention_mask`), input checking and
`pad()`. Model extractors (`WhisperFeatureExtractor`) are declarative subclasses with a
`__call__`.

The numerics shared by audio models live here: the mel scales (HTK, Kaldi, Slaney),
`mel_filter_bank` (optionally Slaney-normalised), `window_function`, and `stft_mel_power`, a
centred STFT (reflect padding) whose frames made only of padding are computed once.

Input rules (`as_clips`): one clip is a 1-D array, a list of numbers or a 1-D tensor; a batch
is a list of clips or a 2-D array (one clip per row, as in `transformers`). Samples must be
floating point (integer PCM is refused: its scale is unknown) and finite. A 2-D clip inside a
list is multichannel: its shorter axis (at most 8) is the channel axis, and the channels are
averaged to mono (logged once). A 2-D array given alone whose second axis has at most 8
entries and is shorter than the first is read as one (samples, channels) clip -- the layout
`soundfile.read` returns -- rather than as thousands of clips of a few samples each.

`load_audio(path)` reads WAV / FLAC / OGG through `soundfile` (an optional dependency) as
float32 mono. NumPy only: torch is imported only for `return_tensors="pt"` or tensor inputs.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, EntryNotFoundError, InputError
from ..io import read_json
from .processor import PROCESSOR_FILE, BatchFeature, check_tensor_type
from .settings import PREPROCESSOR_FILE, PreprocessorSettings

logger = logging.getLogger(__name__)

MAX_CHANNELS = 8  # the widest layout read as channels of one clip (7.1 surround)
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
# Keys that name the writer, not a setting; arrays older files hold that are always recomputed.
_TYPE_KEYS = ("feature_extractor_type", "processor_class", "auto_map")
_RECOMPUTED = ("mel_filters", "window")
_LOGGED: set[str] = set()


def _log_once(key: str, message: str, level: int = logging.WARNING) -> None:
    if key not in _LOGGED:
        _LOGGED.add(key)
        logger.log(level, message)


# -- mel scale, filters, windows ----------------------------------------------------------

MEL_SCALES = ("htk", "slaney", "kaldi")
_SLANEY_BREAK_HZ, _SLANEY_BREAK_MEL = 1000.0, 15.0   # linear below 1 kHz, logarithmic above
_SLANEY_LOG_STEP = math.log(6.4) / 27.0              # 27 mels per factor 6.4 in frequency


def hertz_to_mel(freq, mel_scale: str = "htk"):
    """Hertz to mels: HTK (2595 log10(1 + f/700)), Kaldi (1127 ln(1 + f/700)) or Slaney (linear
    3 mels per 200 Hz up to 1 kHz, logarithmic above)."""
    f = np.asarray(freq, dtype=np.float64)
    if mel_scale == "htk":
        mel = 2595.0 * np.log10(1.0 + f / 700.0)
    elif mel_scale == "kaldi":
        mel = 1127.0 * np.log(1.0 + f / 700.0)
    elif mel_scale == "slaney":
        above = np.maximum(f, _SLANEY_BREAK_HZ)  # keeps log() away from 0 where it is not used
        mel = np.where(f >= _SLANEY_BREAK_HZ,
                       _SLANEY_BREAK_MEL + np.log(above / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP, f * 3.0 / 200.0)
    else:
        raise InputError(f"mel_scale must be one of {MEL_SCALES}, found {mel_scale!r}")
    return float(mel) if np.ndim(freq) == 0 else mel


def mel_to_hertz(mels, mel_scale: str = "htk"):
    """The inverse of `hertz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    if mel_scale == "htk":
        f = 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    elif mel_scale == "kaldi":
        f = 700.0 * (np.exp(m / 1127.0) - 1.0)
    elif mel_scale == "slaney":
        f = np.where(m >= _SLANEY_BREAK_MEL,
                     _SLANEY_BREAK_HZ * np.exp((m - _SLANEY_BREAK_MEL) * _SLANEY_LOG_STEP), m * 200.0 / 3.0)
    else:
        raise InputError(f"mel_scale must be one of {MEL_SCALES}, found {mel_scale!r}")
    return float(f) if np.ndim(mels) == 0 else f


def mel_filter_bank(num_frequency_bins: int, num_mel_filters: int, min_frequency: float,
                    max_frequency: float, sampling_rate: int, norm: str | None = None,
                    mel_scale: str = "htk") -> np.ndarray:
    """Triangular mel filters, (num_frequency_bins, num_mel_filters) float64: a power
    spectrum (..., bins) times this matrix is a mel spectrum.

    The filter edges are `num_mel_filters + 2` points evenly spaced in mels between the two
    frequencies; filter m rises linearly (in Hz) from edge m to edge m+1 and falls to edge m+2.
    The FFT bins sit at `linspace(0, sampling_rate // 2, num_frequency_bins)` Hz.
    `norm="slaney"` divides each triangle by its width in Hz / 2 (equal area), as librosa and
    Whisper do.
    """
    if norm not in (None, "slaney"):
        raise InputError(f"norm must be None or 'slaney', found {norm!r}")
    if num_frequency_bins < 2 or num_mel_filters < 1:
        raise InputError(f"mel_filter_bank needs num_frequency_bins >= 2 and num_mel_filters >= 1, found "
                         f"{num_frequency_bins} and {num_mel_filters}")
    if not 0 <= min_frequency <= max_frequency:
        raise InputError(f"mel_filter_bank needs 0 <= min_frequency <= max_frequency, found {min_frequency} "
                         f"and {max_frequency}")
    mel_edges = np.linspace(hertz_to_mel(min_frequency, mel_scale), hertz_to_mel(max_frequency, mel_scale),
                            num_mel_filters + 2)
    edges = mel_to_hertz(mel_edges, mel_scale)                               # (M + 2,) Hz
    bins = np.linspace(0, sampling_rate // 2, num_frequency_bins)[:, None]    # (F, 1) Hz
    left, center, right = edges[None, :-2], edges[None, 1:-1], edges[None, 2:]
    rising = (bins - left) / (center - left)
    falling = (right - bins) / (right - center)
    filters = np.maximum(0.0, np.minimum(rising, falling))                   # (F, M)
    if norm == "slaney":
        filters *= 2.0 / (right - left)
    empty = np.flatnonzero(filters.max(axis=0) == 0)
    if empty.size:
        _log_once(f"empty-mel-{num_frequency_bins}-{num_mel_filters}-{max_frequency}-{sampling_rate}",
                  f"mel_filter_bank: filters {empty.tolist()} of {num_mel_filters} cover no FFT bin; "
                  f"use fewer filters or more frequency bins (found {num_frequency_bins})")
    return filters


def window_function(length: int, name: str = "hann", periodic: bool = True) -> np.ndarray:
    """A float64 window of `length` samples: "hann", "hamming" or "boxcar". A periodic window
    (the STFT convention, as `torch.hann_window`) is the symmetric one of length + 1 without
    its last sample."""
    if length < 1:
        raise InputError(f"window length must be >= 1, found {length}")
    period = length if periodic else max(length - 1, 1)
    phase = 2.0 * np.pi * np.arange(length) / period
    if name in ("hann", "hann_window"):
        return 0.5 - 0.5 * np.cos(phase)
    if name in ("hamming", "hamming_window"):
        return 0.54 - 0.46 * np.cos(phase)
    if name == "boxcar":
        return np.ones(length)
    raise InputError(f"window name must be 'hann', 'hamming' or 'boxcar', found {name!r}")


# -- the STFT -----------------------------------------------------------------------------

_BLOCK_FRAMES = 128  # frames per FFT call: the windowed block, its spectrum and power fit in L2 (~0.5 MB)


def stft_mel_power(signal: np.ndarray, window: np.ndarray, hop_length: int, mel_filters_t: np.ndarray,
                   n_frames: int, *, constant_from: int | None = None) -> np.ndarray:
    """Mel power spectrogram of a centred STFT, (n_mels, n_frames) float32.

    `signal` (1-D float32) is reflect-padded by len(window) // 2 on both sides (as
    `torch.stft(center=True)`); frame t starts at t * hop_length of the padded signal and the
    first `n_frames` frames are kept. `mel_filters_t` is (n_mels, n_fft // 2 + 1).
    `constant_from`: where the signal's trailing padding (one repeated value) starts; the
    frames made only of it are equal, so their column is computed once.
    """
    n_fft = len(window)
    padded = np.pad(signal, n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    if len(frames) < n_frames:
        raise InputError(f"{len(signal)} samples give {len(frames)} STFT frames, {n_frames} asked")
    out = np.empty((len(mel_filters_t), n_frames), np.float32)
    first, stop = _constant_frames(len(signal), constant_from, n_fft, hop_length, n_frames)
    window = window.astype(np.float32)
    bands = _mel_bands(mel_filters_t)
    for a, b in ((0, first), (stop, n_frames)):
        for start in range(a, b, _BLOCK_FRAMES):
            end = min(start + _BLOCK_FRAMES, b)
            spectrum = np.fft.rfft(frames[start:end] * window, axis=-1)   # (T, F) complex64
            power = np.square(spectrum.real) + np.square(spectrum.imag)
            for rows, cols, weights in bands:
                np.matmul(weights, power[:, cols].T, out=out[rows, start:end])
    if first < stop:
        pad_frame = np.full((1, n_fft), signal[constant_from], np.float32) * window
        spectrum = np.fft.rfft(pad_frame, axis=-1)
        out[:, first:stop] = mel_filters_t @ (np.square(spectrum.real) + np.square(spectrum.imag)).T
    return out


_BAND_FILTERS = 10  # mel filters per band


def _mel_bands(mel_filters_t: np.ndarray) -> list[tuple[slice, slice, np.ndarray]]:
    """Split (n_mels, F) triangular filters into bands of a few filters and the bins they
    cover: (rows, cols, weights[rows, cols]). Mel filters are narrow, so the bands hold about
    a fifth of the dense matrix's products, and each product is small enough that BLAS runs
    it on the calling thread (a threaded BLAS spinning beside our own threads stalls badly
    on a loaded machine)."""
    bands = []
    for r0 in range(0, len(mel_filters_t), _BAND_FILTERS):
        rows = slice(r0, min(r0 + _BAND_FILTERS, len(mel_filters_t)))
        used = np.flatnonzero(mel_filters_t[rows].any(axis=0))
        if used.size:
            cols = slice(int(used[0]), int(used[-1]) + 1)
            bands.append((rows, cols, np.ascontiguousarray(mel_filters_t[rows, cols])))
        else:
            bands.append((rows, slice(0, 1), np.zeros((rows.stop - rows.start, 1), mel_filters_t.dtype)))
    return bands


def _constant_frames(n: int, constant_from: int | None, n_fft: int, hop: int, n_frames: int) -> tuple[int, int]:
    """[first, stop): the frames of an n-sample signal whose samples all come from its constant
    tail signal[constant_from:], directly or through the reflection at the end."""
    if constant_from is None or not 0 < constant_from < n:
        return n_frames, n_frames
    half = n_fft // 2
    # padded[i] for i >= n + half mirrors signal[2n - 2 - (i - half)]: a tail value while >= constant_from
    end = n + half + min(half, n - 1 - constant_from)
    first = -(-(constant_from + half) // hop)
    stop = min(n_frames, (end - n_fft) // hop + 1)
    return (first, stop) if first < stop else (n_frames, n_frames)


# -- inputs -------------------------------------------------------------------------------

def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "numpy")


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, (bool, np.bool_))


def as_clips(raw_speech) -> list[np.ndarray]:
    """One clip or a batch (see the module docstring) -> a list of 1-D float32 arrays."""
    if _is_tensor(raw_speech):
        raw_speech = raw_speech.detach().cpu().numpy()
    if isinstance(raw_speech, np.ndarray):
        if raw_speech.ndim == 2 and not _channels_last_clip(raw_speech.shape):
            if raw_speech.shape[0] == 0:
                raise InputError("raw_speech is an empty batch: shape (0, ...)")
            return [as_clip(row, i) for i, row in enumerate(raw_speech)]
        return [as_clip(raw_speech, 0)]
    if isinstance(raw_speech, (list, tuple)):
        if len(raw_speech) == 0:
            raise InputError("raw_speech is empty: pass a waveform or a list of waveforms")
        if _is_number(raw_speech[0]):  # one clip as a list of samples
            return [as_clip(raw_speech, 0)]
        return [as_clip(item, i) for i, item in enumerate(raw_speech)]
    raise InputError(f"raw_speech must be a NumPy array, a torch tensor, a list of numbers, or a list of "
                     f"those; found {type(raw_speech).__name__}")


def _channels_last_clip(shape: tuple[int, ...]) -> bool:
    return shape[1] <= MAX_CHANNELS < shape[0]


def as_clip(item, i: int = 0) -> np.ndarray:
    """Audio item `i` as 1-D float32, checked; multichannel audio averaged to mono."""
    if _is_tensor(item):
        item = item.detach().cpu().numpy()
    if isinstance(item, (list, tuple)):
        try:
            item = np.asarray(item, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputError(f"audio {i} is a list that is not all numbers (or is ragged)") from None
    if not isinstance(item, np.ndarray):
        raise InputError(f"audio {i} is a {type(item).__name__}; expected a 1-D NumPy array, a list of "
                         f"numbers or a torch tensor")
    if not np.issubdtype(item.dtype, np.floating):
        hint = (f"; scale integer PCM to [-1, 1] first, e.g. x / {2 ** (8 * item.dtype.itemsize - 1)}"
                if np.issubdtype(item.dtype, np.integer) else "")
        raise InputError(f"audio {i} has dtype {item.dtype}: expected floating-point samples "
                         f"(float32 or float64){hint}")
    if item.ndim == 2:
        item = _to_mono(item, i)
    if item.ndim != 1:
        raise InputError(f"audio {i} has shape {item.shape}: expected (samples,), or (channels, samples) / "
                         f"(samples, channels) with at most {MAX_CHANNELS} channels")
    if item.size == 0:
        raise InputError(f"audio {i} is empty (0 samples)")
    item = item.astype(np.float32, copy=False)
    if not np.isfinite(item).all():
        raise InputError(f"audio {i} contains NaN or infinite samples")
    return item


def _to_mono(item: np.ndarray, i: int) -> np.ndarray:
    channel_axis = int(np.argmin(item.shape))  # the shorter axis; (C, T) when both are equal
    channels = item.shape[channel_axis]
    if channels > MAX_CHANNELS:
        raise InputError(f"audio {i} has shape {item.shape}: a 2-D clip must be (channels, samples) or "
                         f"(samples, channels) with at most {MAX_CHANNELS} channels")
    if channels > 1:
        layout = "(channels, samples)" if channel_axis == 0 else "(samples, channels)"
        _log_once(f"mono-{channels}-{channel_axis}",
                  f"audio of shape {item.shape} read as {layout}: its {channels} channels are averaged to mono",
                  logging.INFO)
    return item.astype(np.float32, copy=False).mean(axis=channel_axis, dtype=np.float32)


# -- settings files -----------------------------------------------------------------------

class FeatureExtractor(PreprocessorSettings):
    """Settings of a feature extractor, read from and written to preprocessor_config.json.

    Subclasses declare their settings as class attributes (the defaults) listed in `FIELDS`,
    and `DERIVED`: read-only values computed from the settings, written to the file for
    other readers and ignored when read back.
    """

    FIELDS: ClassVar[tuple[str, ...]] = ()
    DERIVED: ClassVar[tuple[str, ...]] = ()
    model_input_names: ClassVar[list[str]] = ["input_values"]

    def __init__(self, **kwargs):
        ignored = set(self.FIELDS) | set(self.DERIVED) | set(_TYPE_KEYS) | set(_RECOMPUTED)
        self.extra: dict[str, Any] = copy.deepcopy({k: v for k, v in kwargs.items() if k not in ignored})
        for name in self.FIELDS:
            value = kwargs.get(name)
            setattr(self, name, copy.deepcopy(getattr(type(self), name) if value is None else value))
        self.check()

    def check(self) -> None:
        """Validate the settings; raise ConfigError naming the key (subclasses extend)."""

    @classmethod
    def from_dict(cls, config: dict[str, Any], **overrides) -> FeatureExtractor:
        return cls(**{**config, **overrides})

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        token: str | bool | None = None, subfolder: str | None = None,
                        **overrides) -> FeatureExtractor:
        """Read preprocessor_config.json (or processor_config.json's `feature_extractor`)."""
        hub = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                   token=token, subfolder=subfolder)
        return cls.from_dict(load_feature_extractor_dict(path_or_repo_id, **hub), **overrides)

    def to_dict(self) -> dict[str, Any]:
        out = copy.deepcopy(self.extra)
        for name in (*self.FIELDS, *self.DERIVED):
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else copy.deepcopy(value)
        out["feature_extractor_type"] = type(self).__name__
        return out



def load_feature_extractor_dict(path_or_repo_id, **hub) -> dict[str, Any]:
    """The feature extractor settings of a folder or repo, found as `transformers` finds them:
    processor_config.json's `feature_extractor` (or `audio_processor`) entry, else
    preprocessor_config.json; both files from one commit."""
    from ..hub import pin, resolve

    hub["revision"] = pin(path_or_repo_id, hub.get("revision"))
    processor_file = resolve(path_or_repo_id, PROCESSOR_FILE, required=False, **hub)
    if processor_file is not None:
        data = read_json(processor_file, what="processor config")
        nested = data.get("feature_extractor", data.get("audio_processor"))
        if isinstance(nested, dict):
            return nested
    path = resolve(path_or_repo_id, PREPROCESSOR_FILE, required=False, **hub)
    if path is None:
        raise EntryNotFoundError(
            f"no feature extractor settings in {path_or_repo_id}: looked for {PREPROCESSOR_FILE} and a "
            f"'feature_extractor' entry in {PROCESSOR_FILE}. Save one with FeatureExtractor.save_pretrained()."
        )
    return read_json(path, what="feature extractor config")


def _positive_int(config: FeatureExtractor, *keys: str) -> None:
    for key in keys:
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{type(config).__name__}: {key} must be a positive int, found {value!r}")


def _number(config: FeatureExtractor, key: str, minimum: float | None = None) -> None:
    value = getattr(config, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ConfigError(f"{type(config).__name__}: {key} must be a number{bound}, found {value!r}")


# -- sequences: sampling rate, padding ----------------------------------------------------

class SequenceFeatureExtractor(FeatureExtractor):
    """A feature extractor over 1-D sequences: sampling rate, padding and truncation."""

    feature_size: int = 1
    sampling_rate: int = 16000
    padding_value: float = 0.0
    padding_side: str = "right"
    return_attention_mask: bool = True
    FIELDS: ClassVar[tuple[str, ...]] = ("feature_size", "sampling_rate", "padding_value", "padding_side",
                                         "return_attention_mask")

    def check(self) -> None:
        _positive_int(self, "feature_size", "sampling_rate")
        _number(self, "padding_value")
        if self.padding_side not in ("left", "right"):
            raise ConfigError(f"{type(self).__name__}: padding_side must be 'left' or 'right', "
                              f"found {self.padding_side!r}")
        if not isinstance(self.return_attention_mask, bool):
            raise ConfigError(f"{type(self).__name__}: return_attention_mask must be true or false, "
                              f"found {self.return_attention_mask!r}")

    def check_sampling_rate(self, sampling_rate) -> None:
        """A rate other than the extractor's is an error (loom does not resample); no rate
        given is logged once, as silent mismatches are the usual cause of bad transcripts."""
        name = type(self).__name__
        if sampling_rate is None:
            _log_once(f"no-rate-{name}", f"{name} was called without sampling_rate; the audio is assumed to be "
                      f"sampled at {self.sampling_rate} Hz. Pass sampling_rate= to have a mismatch caught.")
        elif sampling_rate != self.sampling_rate:
            raise InputError(f"{name} expects audio sampled at {self.sampling_rate} Hz, but sampling_rate="
                             f"{sampling_rate} was given; resample the audio to {self.sampling_rate} Hz first")

    def padding_plan(self, lengths: list[int], padding="longest", max_length: int | None = None,
                     truncation: bool = False, pad_to_multiple_of: int | None = None
                     ) -> tuple[list[int], list[int]]:
        """(kept, padded): each sequence's length after truncation and after padding, by the
        rules of `transformers`' SequenceFeatureExtractor.pad."""
        strategy = _strategy(padding)
        for name, value in (("max_length", max_length), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise InputError(f"{name} must be a positive int or None, found {value!r}")
        if strategy == "max_length" and max_length is None:
            raise InputError("padding='max_length' needs max_length=")
        if truncation and max_length is None:
            raise InputError("truncation=True needs max_length=")
        if strategy != "do_not_pad" and self.padding_value is None:
            raise ConfigError(f"{type(self).__name__}: padding needs a padding_value, found None")
        limit = None if max_length is None else _round_up(max_length, pad_to_multiple_of)
        kept = [min(n, limit) if truncation else n for n in lengths]
        if strategy == "do_not_pad":
            return kept, list(kept)
        target = _round_up(max(kept), pad_to_multiple_of) if strategy == "longest" else limit
        return kept, [max(n, target) for n in kept]

    def pad_one(self, x: np.ndarray, length: int, fill: float | None = None) -> tuple[np.ndarray, int]:
        """(x padded to `length` along its first axis on `padding_side` with `fill` (default
        padding_value), the offset of x in it)."""
        missing = length - len(x)
        if missing <= 0:
            return x, 0
        out = np.full((length, *x.shape[1:]), self.padding_value if fill is None else fill, dtype=x.dtype)
        offset = missing if self.padding_side == "left" else 0
        out[offset:offset + len(x)] = x
        return out, offset

    def sample_mask(self, kept: int, length: int) -> np.ndarray:
        """(length,) int32: 1 on the `kept` real samples, 0 on the padding."""
        return self.pad_one(np.ones(kept, np.int32), length, fill=0)[0]

    def pad(self, processed_features, padding="longest", max_length: int | None = None,
            truncation: bool = False, pad_to_multiple_of: int | None = None,
            return_attention_mask: bool | None = None, return_tensors: str | None = None) -> BatchFeature:
        """Pad (and truncate) a batch of sequences of shape (T,) or (T, feature_size).

        `processed_features`: a dict / BatchFeature whose `model_input_names[0]` entry is a list
        of sequences (a given `attention_mask` is cut and padded with it; other keys pass
        through), or a list of such dicts (a DataLoader collate function). `padding`: True or
        "longest", "max_length", False / None / "do_not_pad". Sequences of one length are
        returned stacked in one array (as `transformers`), else as a list.
        """
        check_tensor_type(return_tensors)
        features = _as_feature_dict(processed_features, self.model_input_names[0])
        name = self.model_input_names[0]
        seqs = [np.asarray(s) for s in features[name]]
        kept, lengths = self.padding_plan([len(s) for s in seqs], padding, max_length, truncation,
                                          pad_to_multiple_of)
        want_mask = self.return_attention_mask if return_attention_mask is None else return_attention_mask
        given_mask = features.get("attention_mask")
        out: dict[str, Any] = dict(features)
        padded, masks = [], []
        for i, (seq, k, n) in enumerate(zip(seqs, kept, lengths)):
            if seq.dtype == np.float64:
                seq = seq.astype(np.float32)
            padded.append(self.pad_one(seq[:k], n)[0])
            if given_mask is not None:
                masks.append(self.pad_one(np.asarray(given_mask[i])[:k], n, fill=0)[0])
            elif want_mask:
                masks.append(self.sample_mask(k, n))
        out[name] = _stack_if_equal(padded)
        if masks:
            out["attention_mask"] = _stack_if_equal(masks)
        return BatchFeature(out, tensor_type=return_tensors)


def _strategy(padding) -> str:
    if padding is True:
        return "longest"
    if padding is False or padding is None:
        return "do_not_pad"
    if padding not in PADDING_STRATEGIES:
        raise InputError(f"padding must be True, False, None or one of {PADDING_STRATEGIES}, found {padding!r}")
    return padding


def _round_up(n: int, multiple: int | None) -> int:
    return n if not multiple else -(-n // multiple) * multiple


def _as_feature_dict(processed, name: str) -> dict[str, list]:
    if isinstance(processed, (list, tuple)) and processed and isinstance(processed[0], dict):
        processed = {key: [example[key] for example in processed] for key in processed[0]}
    if not isinstance(processed, dict) or name not in processed:
        found = sorted(processed) if isinstance(processed, dict) else type(processed).__name__
        raise InputError(f"pad() takes a dict (or a list of dicts) with the key {name!r}; found {found}")
    seqs = processed[name]
    if len(seqs) == 0:
        raise InputError(f"pad(): {name!r} holds no sequences")
    return {k: (list(v) if isinstance(v, (list, tuple, np.ndarray)) else v) for k, v in processed.items()}


def _stack_if_equal(arrays: list[np.ndarray]):
    return np.stack(arrays) if len({a.shape for a in arrays}) == 1 else arrays


# -- files on disk ------------------------------------------------------------------------

def load_audio(path: str | os.PathLike, sampling_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file (WAV, FLAC, OGG, ... whatever libsndfile reads) as float32 mono.

    Returns (samples, sampling rate). Several channels are averaged. With `sampling_rate`
    given, a file at another rate is an error naming both (loom does not resample). Needs
    the `soundfile` package.
    """
    try:
        import soundfile
    except ImportError:
        raise ConfigError("reading audio files needs the soundfile package: pip install soundfile "
                          "(or pip install 'loom[audio]')") from None
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"audio file {path} does not exist")
    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)   # (samples, channels)
    except (RuntimeError, TypeError, ValueError, soundfile.LibsndfileError) as e:
        raise InputError(f"audio file {path} cannot be read by soundfile: {e}") from None
    if sampling_rate is not None and rate != sampling_rate:
        raise InputError(f"audio file {path} is sampled at {rate} Hz, but {sampling_rate} Hz was asked; "
                         f"loom does not resample: convert the file (e.g. with ffmpeg -ar {sampling_rate})")
    if data.shape[0] == 0:
        raise InputError(f"audio file {path} holds no samples")
    if data.shape[1] > 1:
        _log_once(f"file-mono-{data.shape[1]}", f"{path}: its {data.shape[1]} channels are averaged to mono",
                  logging.INFO)
    return data.mean(axis=1, dtype=np.float32), int(rate)


__all__ = [
    "FeatureExtractor", "SequenceFeatureExtractor", "load_audio", "load_feature_extractor_dict", "as_clips", "as_clip",
    "mel_filter_bank", "hertz_to_mel", "mel_to_hertz", "window_function", "stft_mel_power", "MAX_CHANNELS",
]
