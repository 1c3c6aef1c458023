"""Audio preprocessing numerics and plumbing (loom.preprocessing.audio) against transformers'
audio_utils / SequenceFeatureExtractor and torch.stft: mel filters, windows, the STFT with
its padding-frame shortcut, input rules, pad(), settings files, load_audio."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest
import soundfile
import torch
from transformers import SequenceFeatureExtractor as HFSequenceFeatureExtractor
from transformers.audio_utils import mel_filter_bank as hf_mel_filter_bank

from loom.errors import ConfigError, EntryNotFoundError, InputError
from loom.preprocessing import audio
from loom.preprocessing.audio import (
    FeatureExtractor, SequenceFeatureExtractor, as_clips, hertz_to_mel, load_audio, load_feature_extractor_dict,
    mel_filter_bank, mel_to_hertz, stft_mel_power, window_function,
)


def tone(n: int, seed: int = 0, rate: int = 16000) -> np.ndarray:
    """Harmonics with a moving pitch and envelope, a little noise, a silent gap and a very
    quiet stretch: content across the mel range and across the 80 dB the features keep."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    f0 = 120 + 80 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.3 + 0.25 * np.sin(2 * np.pi * 2.3 * t))
    x = x + 0.01 * rng.standard_normal(n)
    x[n // 3: n // 3 + n // 10] = 0.0
    x[n // 2: n // 2 + n // 10] *= 1e-4
    return (0.5 * x).astype(np.float32)


# -- mel filters, windows ---------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values")
@pytest.mark.parametrize("scale", ["slaney", "htk", "kaldi"])
@pytest.mark.parametrize("norm", [None, "slaney"])
@pytest.mark.parametrize("bins,mels,fmin,fmax,rate", [
    (201, 80, 0.0, 8000.0, 16000), (201, 128, 0.0, 8000.0, 16000), (257, 40, 20.0, 7600.0, 16000),
    (513, 64, 125.0, 11025.0, 22050), (1025, 229, 30.0, 16000.0, 44100),
])
def test_mel_filter_bank_matches_transformers(scale, norm, bins, mels, fmin, fmax, rate):
    ours = mel_filter_bank(bins, mels, fmin, fmax, rate, norm=norm, mel_scale=scale)
    ref = hf_mel_filter_bank(bins, mels, fmin, fmax, rate, norm=norm, mel_scale=scale)
    assert ours.shape == (bins, mels) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_mel_scales_round_trip_and_known_points():
    freqs = np.array([0.0, 200.0, 999.0, 1000.0, 1001.0, 4000.0, 8000.0])
    for scale in ("slaney", "htk", "kaldi"):
        np.testing.assert_allclose(mel_to_hertz(hertz_to_mel(freqs, scale), scale), freqs, rtol=1e-12, atol=1e-9)
    assert hertz_to_mel(1000.0, "slaney") == pytest.approx(15.0)       # the linear/log break
    assert hertz_to_mel(6400.0, "slaney") == pytest.approx(15.0 + 27.0)  # 27 mels per factor 6.4
    assert hertz_to_mel(700.0, "htk") == pytest.approx(2595 * np.log10(2))
    with pytest.raises(InputError, match="mel_scale"):
        hertz_to_mel(100.0, "bark")


def test_mel_filter_bank_logs_empty_filters(caplog):
    audio._LOGGED.clear()
    with caplog.at_level(logging.WARNING, logger="loom.preprocessing.audio"):
        bank = mel_filter_bank(201, 128, 0.0, 8000.0, 16000, mel_scale="htk")
    empty = np.flatnonzero(bank.max(axis=0) == 0).tolist()
    assert empty and f"filters {empty} of 128 cover no FFT bin" in caplog.text


def test_mel_filter_bank_bad_arguments():
    with pytest.raises(InputError, match="norm"):
        mel_filter_bank(201, 80, 0, 8000, 16000, norm="area")
    with pytest.raises(InputError, match="min_frequency <= max_frequency"):
        mel_filter_bank(201, 80, 9000, 8000, 16000)
    with pytest.raises(InputError, match="num_frequency_bins >= 2"):
        mel_filter_bank(1, 80, 0, 8000, 16000)


def test_windows_match_torch():
    for n in (400, 401, 512):
        np.testing.assert_allclose(window_function(n, "hann"), torch.hann_window(n, dtype=torch.float64).numpy(),
                                   atol=1e-15)
        np.testing.assert_allclose(window_function(n, "hann", periodic=False), np.hanning(n), atol=1e-15)
        np.testing.assert_allclose(window_function(n, "hamming"),
                                   torch.hamming_window(n, dtype=torch.float64).numpy(), atol=1e-15)
    assert np.array_equal(window_function(5, "boxcar"), np.ones(5))
    with pytest.raises(InputError, match="window name"):
        window_function(400, "kaiser")


# -- the STFT -----------------------------------------------------------------------------

def torch_mel_power(signal: np.ndarray, n_fft: int, hop: int, filters_t: np.ndarray, n_frames: int) -> np.ndarray:
    """The reference: torch.stft (centred, reflect), |.|^2, mel projection, in float64."""
    x = torch.from_numpy(signal.astype(np.float64))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64), center=True,
                      pad_mode="reflect", return_complex=True)
    power = spec.abs() ** 2
    return (torch.from_numpy(filters_t.astype(np.float64)) @ power).numpy()[:, :n_frames]


@pytest.mark.parametrize("real,total,value", [
    (5000, 48000, 0.0),        # mostly padding: most frames computed once
    (48000 - 100, 48000, 0.0),  # padding shorter than the reflection at the end
    (48000 - 300, 48000, 0.0),  # the reflection reaches back into the padding only
    (30000, 48000, 0.25),      # a non-zero padding value
    (48000, 48000, 0.0),       # no padding
])
def test_stft_mel_power_matches_torch(real, total, value):
    n_fft, hop = 400, 160
    signal = np.full(total, value, np.float32)
    signal[:real] = tone(real, seed=real)
    filters_t = np.ascontiguousarray(mel_filter_bank(201, 80, 0, 8000, 16000, "slaney", "slaney").T, np.float32)
    n_frames = total // hop
    ref = torch_mel_power(signal, n_fft, hop, filters_t, n_frames)
    window = window_function(n_fft).astype(np.float32)
    for constant_from in (real, None):  # with the shortcut and without: equal values
        ours = stft_mel_power(signal, window, hop, filters_t, n_frames, constant_from=constant_from)
        assert ours.shape == (80, n_frames) and ours.dtype == np.float32
        scale = ref.max()
        np.testing.assert_allclose(ours, ref, rtol=2e-4, atol=1e-6 * scale)


def test_constant_frames_are_exactly_those_made_of_padding():
    n, hop, n_fft = 48000, 160, 400
    for real in (1, 199, 5000, 47500, 47700, 47759, 47800, 47999):
        first, stop = audio._constant_frames(n, real, n_fft, hop, n // hop)
        padded = np.pad(np.arange(n) >= real, n_fft // 2, mode="reflect")   # True where a padding sample lands
        frame_is_padding = [padded[t * hop: t * hop + n_fft].all() for t in range(n // hop)]
        expected = [t for t, pad in enumerate(frame_is_padding) if pad]
        assert list(range(first, stop)) == [t for t in expected if t >= first], real
        assert not expected or (first == expected[0] and stop == n // hop), real


# -- inputs ---------------------------------------------------------------------------------

def test_as_clips_accepts_every_form():
    x = tone(1000)
    for given, count in [(x, 1), (x.astype(np.float64), 1), (list(map(float, x)), 1), (torch.from_numpy(x), 1),
                         ([x, x[:500]], 2), ((x, x), 2), (np.stack([x, x, x]), 3), ([list(x), x], 2),
                         ([torch.from_numpy(x)], 1), (x.astype(np.float16), 1)]:
        clips = as_clips(given)
        assert len(clips) == count
        assert all(c.dtype == np.float32 and c.ndim == 1 for c in clips)
        half = getattr(given, "dtype", None) == np.float16
        np.testing.assert_allclose(clips[0], x, atol=1e-3 if half else 0)


def test_multichannel_is_averaged_to_mono(caplog):
    left, right = tone(3000, 1), tone(3000, 2)
    mono = (left + right) / 2
    audio._LOGGED.clear()
    with caplog.at_level(logging.INFO, logger="loom.preprocessing.audio"):
        first = as_clips([np.stack([left, right])])          # (channels, samples) in a list
        second = as_clips(np.stack([left, right], axis=1))   # (samples, channels) alone: soundfile's layout
        as_clips([np.stack([left, right])])
    np.testing.assert_allclose(first[0], mono, atol=1e-7)
    np.testing.assert_allclose(second[0], mono, atol=1e-7)
    assert len(first) == len(second) == 1
    messages = [r.getMessage() for r in caplog.records if "averaged to mono" in r.getMessage()]
    assert len(messages) == 2  # once per layout, not once per call
    assert "(channels, samples)" in messages[0] and "(samples, channels)" in messages[1]
    assert len(as_clips(np.stack([left, right]))) == 2  # a 2-D array alone: one clip per row, as transformers


@pytest.mark.parametrize("bad,match", [
    (np.zeros(0, np.float32), "audio 0 is empty"),
    ([], "raw_speech is empty"),
    ([np.ones(10, np.float32), np.zeros(0, np.float32)], "audio 1 is empty"),
    ([np.ones(10, np.float32), (np.ones(10) * 100).astype(np.int16)], r"audio 1 has dtype int16.*x / 32768"),
    (np.ones(10, np.int32), r"audio 0 has dtype int32.*x / 2147483648"),
    ([np.ones(10, np.float32), np.ones((2, 3, 10), np.float32)], r"audio 1 has shape \(2, 3, 10\)"),
    ([np.ones(10, np.float32), np.ones((2, 3, 10), np.float32)], r"audio 1 has shape \(2, 3, 10\)"),
    ([np.ones((20, 30), np.float32)], r"audio 0 has shape \(20, 30\).*at most 8 channels"),
    ([np.ones(10, np.float32), np.array([1.0, np.nan], np.float32)], "audio 1 contains NaN"),
    ([np.ones(10, np.bool_)], "audio 0 has dtype bool"),
    ([np.ones(10, np.complex64)], "audio 0 has dtype complex64"),
    ([["a", "b"]], "audio 0 is a list that is not all numbers"),
    ([np.ones(10, np.float32), "speech.wav"], "audio 1 is a str"),
    ({"array": np.ones(10)}, "raw_speech must be"),
    (np.ones((0, 10), np.float32), "empty batch"),
])
def test_bad_inputs_name_the_item(bad, match):
    with pytest.raises(InputError, match=match):
        as_clips(bad)


# -- pad() against transformers' SequenceFeatureExtractor ----------------------------------

def _extractors(**kw):
    ours = SequenceFeatureExtractor(feature_size=kw.get("feature_size", 1), sampling_rate=16000,
                                    padding_value=0.5, **{k: v for k, v in kw.items() if k != "feature_size"})
    ref = HFSequenceFeatureExtractor(feature_size=kw.get("feature_size", 1), sampling_rate=16000, padding_value=0.5,
                                     **{k: v for k, v in kw.items() if k != "feature_size"})
    ref.model_input_names = ours.model_input_names
    return ours, ref


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("feature_size", [1, 3])
@pytest.mark.parametrize("args", [
    dict(padding=True), dict(padding="longest", pad_to_multiple_of=8),
    dict(padding="max_length", max_length=40), dict(padding="max_length", max_length=20, truncation=True),
    dict(padding="max_length", max_length=21, truncation=True, pad_to_multiple_of=8),
    dict(padding="longest", max_length=15, truncation=True), dict(padding=True, return_attention_mask=False),
    dict(padding="do_not_pad", max_length=25, truncation=True),
])
def test_pad_matches_transformers(side, feature_size, args):
    ours, ref = _extractors(feature_size=feature_size, padding_side=side)
    rng = np.random.default_rng(0)
    shape = (lambda n: (n,)) if feature_size == 1 else (lambda n: (n, feature_size))
    seqs = [rng.standard_normal(shape(n)).astype(np.float32) for n in (25, 30, 30)]
    if args.get("padding") == "do_not_pad":
        seqs = [rng.standard_normal(shape(30)).astype(np.float32) for _ in range(3)]  # the reference stacks them
    got = ours.pad({"input_values": seqs}, **args)
    want = ref.pad({"input_values": [s.copy() for s in seqs]}, **args)
    assert sorted(got) == sorted(want)
    for key in want:
        assert isinstance(got[key], np.ndarray) and got[key].dtype == want[key].dtype, key
        np.testing.assert_array_equal(got[key], want[key])


def test_pad_other_forms():
    ours, _ = _extractors()
    rows = [{"input_values": np.ones(3, np.float32), "label": 1}, {"input_values": np.ones(5), "label": 0}]
    out = ours.pad(rows, return_tensors="pt")   # a collate function's list of dicts
    assert out["input_values"].dtype == torch.float32 and out["input_values"].shape == (2, 5)
    assert out["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert out["label"].tolist() == [1, 0]
    given = ours.pad({"input_values": [np.ones(3), np.ones(5)], "attention_mask": [[1, 1, 0], [1, 1, 1, 1, 1]]})
    assert given["attention_mask"].tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]  # the given mask, padded
    ragged = ours.pad({"input_values": [np.ones(3), np.ones(5)]}, padding=False)
    assert [len(x) for x in ragged["input_values"]] == [3, 5]
    with pytest.raises(InputError, match="needs max_length"):
        ours.pad({"input_values": [np.ones(3)]}, padding="max_length")
    with pytest.raises(InputError, match="truncation=True needs max_length"):
        ours.pad({"input_values": [np.ones(3)]}, truncation=True)
    with pytest.raises(InputError, match="padding must be"):
        ours.pad({"input_values": [np.ones(3)]}, padding="shortest")
    with pytest.raises(InputError, match="with the key 'input_values'"):
        ours.pad({"input_features": [np.ones(3)]})
    with pytest.raises(InputError, match="pad_to_multiple_of must be a positive int"):
        ours.pad({"input_values": [np.ones(3)]}, pad_to_multiple_of=0)


# -- settings files -------------------------------------------------------------------------

def test_settings_round_trip_and_unknown_keys(tmp_path):
    fe = SequenceFeatureExtractor(feature_size=2, sampling_rate=8000, padding_value=-1.0, padding_side="left",
                                  my_setting={"a": [1, 2]}, processor_class="SomeProcessor")
    assert fe.extra == {"my_setting": {"a": [1, 2]}}  # processor_class names the writer: not kept
    fe.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert data == {"feature_size": 2, "sampling_rate": 8000, "padding_value": -1.0, "padding_side": "left",
                    "return_attention_mask": True, "my_setting": {"a": [1, 2]},
                    "feature_extractor_type": "SequenceFeatureExtractor"}
    again = SequenceFeatureExtractor.from_pretrained(tmp_path, padding_value=0.0)
    assert again.to_dict() == {**data, "padding_value": 0.0}
    assert "SequenceFeatureExtractor {" in repr(again)


def test_nested_processor_config_is_read_first(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"feature_size": 1, "sampling_rate": 8000}))
    assert load_feature_extractor_dict(tmp_path)["sampling_rate"] == 8000
    (tmp_path / "processor_config.json").write_text(json.dumps(
        {"processor_class": "X", "feature_extractor": {"feature_size": 1, "sampling_rate": 22050}}))
    assert SequenceFeatureExtractor.from_pretrained(tmp_path).sampling_rate == 22050
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EntryNotFoundError, match="no feature extractor settings in .*empty"):
        load_feature_extractor_dict(empty)


@pytest.mark.parametrize("key,value,match", [
    ("feature_size", 0, "feature_size must be a positive int"),
    ("sampling_rate", 16000.5, "sampling_rate must be a positive int"),
    ("padding_side", "middle", "padding_side must be 'left' or 'right'"),
    ("return_attention_mask", "yes", "return_attention_mask must be true or false"),
    ("padding_value", "0", "padding_value must be a number"),
])
def test_bad_settings_raise_config_error(key, value, match):
    with pytest.raises(ConfigError, match=match):
        SequenceFeatureExtractor(**{key: value})


def test_sampling_rate_checks(caplog):
    fe = SequenceFeatureExtractor(sampling_rate=16000)
    with pytest.raises(InputError, match="16000 Hz.*sampling_rate=44100"):
        fe.check_sampling_rate(44100)
    fe.check_sampling_rate(16000)
    audio._LOGGED.clear()
    with caplog.at_level(logging.WARNING, logger="loom.preprocessing.audio"):
        fe.check_sampling_rate(None)
        fe.check_sampling_rate(None)
    assert [r.getMessage().count("without sampling_rate") for r in caplog.records] == [1]


def test_base_class_is_plain_settings():
    fe = FeatureExtractor(anything=1)
    assert fe.to_dict() == {"anything": 1, "feature_extractor_type": "FeatureExtractor"}


# -- load_audio -----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,subtype,atol", [("WAV", "FLOAT", 0), ("WAV", "PCM_16", 1 / 32768),
                                               ("FLAC", "PCM_16", 1 / 32768), ("FLAC", "PCM_24", 2 ** -23)])
def test_load_audio_reads_files(tmp_path, fmt, subtype, atol):
    x = tone(12345, seed=3)
    path = tmp_path / f"clip.{fmt.lower()}"
    soundfile.write(path, x, 16000, format=fmt, subtype=subtype)
    samples, rate = load_audio(path)
    assert rate == 16000 and samples.dtype == np.float32 and samples.shape == (12345,)
    np.testing.assert_allclose(samples, x, atol=atol)
    assert load_audio(str(path), sampling_rate=16000)[1] == 16000


def test_load_audio_stereo_and_errors(tmp_path, monkeypatch):
    left, right = tone(5000, 1), tone(5000, 2)
    stereo = tmp_path / "stereo.flac"
    soundfile.write(stereo, np.stack([left, right], axis=1), 44100, subtype="PCM_24")
    samples, rate = load_audio(stereo)
    assert rate == 44100
    np.testing.assert_allclose(samples, (left + right) / 2, atol=2 ** -22)
    with pytest.raises(InputError, match=r"stereo.flac is sampled at 44100 Hz, but 16000 Hz"):
        load_audio(stereo, sampling_rate=16000)
    with pytest.raises(InputError, match="nothing-here.wav does not exist"):
        load_audio(tmp_path / "nothing-here.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wave file" * 10)
    with pytest.raises(InputError, match="garbage.wav cannot be read"):
        load_audio(garbage)
    monkeypatch.setitem(sys.modules, "soundfile", None)  # as if it were not installed
    with pytest.raises(ConfigError, match="pip install soundfile"):
        load_audio(stereo)
