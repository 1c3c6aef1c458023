"""WhisperFeatureExtractor against transformers' (5.24): its default path (torch.stft, as torch
is installed) and its NumPy path; lengths shorter than, equal to and longer than 30 s, batches
of 1-4, 80 and 128 mel bins, settings, masks, files both ways, bad inputs."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
import transformers

import loom
from loom.errors import ConfigError, InputError
from loom.models.whisper.feature_extraction import WhisperFeatureExtractor
from loom.preprocessing import audio
from tests.preprocessing.test_audio import tone

ATOL = 1e-4
N = 480000  # 30 s at 16 kHz
# shorter than 30 s (much, a little, by less than the STFT's reflection), exactly 30 s, longer
LENGTHS = [8000, 123457, N - 100, N, N + 16001]


def reference(numpy_path: bool = False, **settings):
    fe = transformers.WhisperFeatureExtractor(**settings)
    if numpy_path:  # what transformers computes without torch
        fe._torch_extract_fbank_features = fe._np_extract_fbank_features
    return fe


def compare(ours, ref, clips, atol=ATOL, **call):
    got = ours(clips, sampling_rate=16000, return_tensors="np", **call)
    want = ref([c.copy() for c in clips] if isinstance(clips, list) else clips, sampling_rate=16000,
               return_tensors="np", **call)
    assert got["input_features"].dtype == np.float32
    assert got["input_features"].shape == want["input_features"].shape
    np.testing.assert_allclose(got["input_features"], want["input_features"], rtol=0, atol=atol)
    return got, want


@pytest.mark.parametrize("batch", [1, 2, 3, 4])
def test_features_match_default_path(batch):
    clips = [tone(LENGTHS[(i + batch) % len(LENGTHS)], seed=i + 10 * batch) for i in range(batch)]
    got, _ = compare(WhisperFeatureExtractor(), reference(), clips)
    assert got["input_features"].shape == (batch, 80, 3000)
    assert "attention_mask" not in got


@pytest.mark.parametrize("length", LENGTHS)
def test_every_length_matches_default_and_numpy_paths(length):
    clip = tone(length, seed=length)
    ours = WhisperFeatureExtractor(feature_size=128)
    for numpy_path in (False, True):
        compare(ours, reference(numpy_path, feature_size=128), [clip])
    compare(ours, reference(feature_size=128), clip)  # one clip given alone


@pytest.mark.parametrize("feature_size", [80, 128])
@pytest.mark.parametrize("do_normalize", [False, True])
def test_normalize_and_bins(feature_size, do_normalize):
    clips = [tone(n, seed=n) for n in (16000, 300001, N + 5)]
    clips[1] = clips[1] * 3 + 0.2  # an offset and a scale for normalisation to remove
    got, want = compare(WhisperFeatureExtractor(feature_size=feature_size), reference(feature_size=feature_size),
                        clips, do_normalize=do_normalize, return_attention_mask=True)
    np.testing.assert_array_equal(got["attention_mask"], want["attention_mask"])


@pytest.mark.parametrize("padding,max_length,multiple", [
    ("longest", None, None), ("longest", None, 1000), ("max_length", 200000, None),
    ("max_length", 96001, None), ("longest", 100000, None),
])
def test_padding_and_attention_mask(padding, max_length, multiple):
    clips = [tone(n, seed=n) for n in (64000, 99999, 150001, 16000)]
    got, want = compare(WhisperFeatureExtractor(), reference(), clips, padding=padding, max_length=max_length,
                        pad_to_multiple_of=multiple, return_attention_mask=True)
    assert got["attention_mask"].dtype == np.int32
    np.testing.assert_array_equal(got["attention_mask"], want["attention_mask"])
    frames = got["input_features"].shape[-1]
    assert got["attention_mask"].shape == (4, frames)


def test_settings_change_the_features_as_the_reference():
    clips = [tone(n, seed=n) for n in (40000, 250000)]
    for settings in (dict(padding_value=0.25), dict(padding_side="left"), dict(chunk_length=10),
                     dict(n_fft=512, hop_length=128), dict(return_attention_mask=True)):
        ours, ref = WhisperFeatureExtractor(**settings), reference(**settings)
        got, want = compare(ours, ref, clips, return_attention_mask=True)
        np.testing.assert_array_equal(got["attention_mask"], want["attention_mask"])


def test_truncation_off_keeps_long_clips_whole():
    clips = [tone(N + 32000, seed=1), tone(N + 32000, seed=2)]
    got, _ = compare(WhisperFeatureExtractor(), reference(), clips, truncation=False)
    assert got["input_features"].shape == (2, 80, 3200)


def test_input_forms_give_the_same_features():
    x = tone(50000, seed=5)
    fe = WhisperFeatureExtractor()
    base = fe(x, sampling_rate=16000)["input_features"]
    assert isinstance(base, np.ndarray) and base.shape == (1, 80, 3000)  # arrays even without return_tensors
    for form in (x.astype(np.float64), list(map(float, x)), torch.from_numpy(x), [x], (x,), x[None, :]):
        np.testing.assert_array_equal(fe(form, sampling_rate=16000)["input_features"], base)
    pt = fe([x, x], sampling_rate=16000, return_tensors="pt", return_attention_mask=True)
    assert isinstance(pt["input_features"], torch.Tensor) and pt["input_features"].dtype == torch.float32
    assert pt["attention_mask"].dtype == torch.int32
    np.testing.assert_array_equal(pt["input_features"][1].numpy(), base[0])
    stereo = fe([np.stack([x, x])], sampling_rate=16000)["input_features"]   # (channels, samples): mixed down
    np.testing.assert_array_equal(stereo, base)


def test_threads_never_change_values():
    clips = [tone(n, seed=n) for n in (20000, 70000, 480000, 33333, 250000)]
    fe = WhisperFeatureExtractor()
    one = fe(clips, sampling_rate=16000, num_threads=1)["input_features"]
    four = fe(clips, sampling_rate=16000, num_threads=4)["input_features"]
    np.testing.assert_array_equal(one, four)


def test_unpadded_clips_of_different_lengths_come_back_as_a_list():
    clips = [tone(32000, seed=1), tone(48000, seed=2)]
    out = WhisperFeatureExtractor()(clips, sampling_rate=16000, padding="do_not_pad", return_attention_mask=True)
    assert [f.shape for f in out["input_features"]] == [(80, 200), (80, 300)]
    assert [m.shape for m in out["attention_mask"]] == [(200,), (300,)]
    for clip, features in zip(clips, out["input_features"]):  # each as the reference gives it alone
        want = reference()(clip, sampling_rate=16000, padding="do_not_pad")["input_features"][0]
        np.testing.assert_allclose(features, want, atol=ATOL)
    with pytest.raises(InputError, match="cannot make 'np' tensors of 'input_features'"):
        WhisperFeatureExtractor()(clips, sampling_rate=16000, padding="do_not_pad", return_tensors="np")


def test_dither_adds_noise_where_the_signal_is_silent():
    clip = tone(100000, seed=3)
    plain = WhisperFeatureExtractor()(clip, sampling_rate=16000)["input_features"][0]
    noisy = WhisperFeatureExtractor(dither=1e-2)(clip, sampling_rate=16000)["input_features"][0]
    again = WhisperFeatureExtractor(dither=1e-2)(clip, sampling_rate=16000)["input_features"][0]
    floor = plain.min()
    assert np.all(plain[:, 700:] == floor)                  # zero padding: the floor (max - 8, scaled)
    assert (noisy[:, 700:] > floor + 0.1).mean() > 0.99     # noise lifts it (a rare low bin may stay)
    assert noisy[:, 700:].mean() > floor + 0.5
    loud = plain[:, :150] > plain.max() - 1.0               # where the signal is loud, noise hardly matters
    assert np.abs(noisy[:, :150] - plain[:, :150])[loud].mean() < 0.02
    assert not np.array_equal(noisy, again)                 # fresh noise each call, as the reference


def test_files_round_trip_with_transformers(tmp_path):
    ours = WhisperFeatureExtractor(feature_size=128, chunk_length=20, return_attention_mask=True,
                                   some_future_key=[1, 2])
    ours.save_pretrained(tmp_path / "loom")
    data = json.loads((tmp_path / "loom" / "preprocessor_config.json").read_text())
    assert data["feature_extractor_type"] == "WhisperFeatureExtractor"
    assert data["n_samples"] == 320000 and data["nb_max_frames"] == 2000 and data["some_future_key"] == [1, 2]
    theirs = transformers.AutoFeatureExtractor.from_pretrained(tmp_path / "loom")
    assert type(theirs) is transformers.WhisperFeatureExtractor
    assert (theirs.feature_size, theirs.chunk_length, theirs.n_samples, theirs.return_attention_mask) == \
        (128, 20, 320000, True)
    clip = tone(100000, seed=9)
    compare(ours, theirs, [clip])
    theirs.save_pretrained(tmp_path / "hf")
    back = WhisperFeatureExtractor.from_pretrained(tmp_path / "hf")
    assert back.to_dict() == {**ours.to_dict(), "dither": 0.0}
    assert back.extra == {"some_future_key": [1, 2]}


def test_old_files_with_mel_filters_and_stale_derived_values(tmp_path):
    """Checkpoints written by older transformers hold the filter matrix and derived values;
    both are recomputed, as the reference does."""
    old = {"feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80, "sampling_rate": 16000,
           "hop_length": 160, "chunk_length": 30, "n_fft": 400, "padding_value": 0.0, "padding_side": "right",
           "return_attention_mask": False, "processor_class": "WhisperProcessor", "n_samples": 123,
           "nb_max_frames": 7, "mel_filters": np.zeros((201, 80)).tolist()}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(old))
    fe = WhisperFeatureExtractor.from_pretrained(tmp_path)
    assert fe.n_samples == 480000 and fe.nb_max_frames == 3000 and fe.extra == {}
    np.testing.assert_allclose(fe.mel_filters, reference().mel_filters, atol=1e-12)
    compare(fe, transformers.WhisperFeatureExtractor.from_pretrained(tmp_path), [tone(20000)])


def test_auto_feature_extractor_reads_transformers_files(tmp_path):
    transformers.WhisperFeatureExtractor(feature_size=128).save_pretrained(tmp_path)
    fe = loom.AutoFeatureExtractor.from_pretrained(tmp_path)
    assert type(fe) is WhisperFeatureExtractor and fe.feature_size == 128
    assert loom.WhisperFeatureExtractor is WhisperFeatureExtractor
    unnamed = tmp_path / "unnamed"   # no feature_extractor_type: the model_type of config.json decides
    unnamed.mkdir()
    (unnamed / "preprocessor_config.json").write_text(json.dumps({"feature_size": 80}))
    (unnamed / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    assert type(loom.AutoFeatureExtractor.from_pretrained(unnamed)) is WhisperFeatureExtractor
    (unnamed / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError, match="no feature extractor"):
        loom.AutoFeatureExtractor.from_pretrained(unnamed)


def test_bad_calls_and_settings(caplog):
    fe = WhisperFeatureExtractor()
    clip = tone(20000)
    with pytest.raises(InputError, match="16000 Hz.*sampling_rate=8000"):
        fe(clip, sampling_rate=8000)
    audio._LOGGED.clear()
    with caplog.at_level(logging.WARNING, logger="loom.preprocessing.audio"):
        fe(clip)
        fe(clip)
    assert caplog.text.count("WhisperFeatureExtractor was called without sampling_rate") == 1
    with pytest.raises(InputError, match="audio 1 is empty"):
        fe([clip, np.zeros(0, np.float32)], sampling_rate=16000)
    with pytest.raises(InputError, match="audio 2 has dtype int16"):
        fe([clip, clip, (clip * 32767).astype(np.int16)], sampling_rate=16000)
    with pytest.raises(InputError, match=r"audio 0 has shape \(1, 2, 20000\)"):
        fe([clip[None, None].repeat(2, axis=1)], sampling_rate=16000)
    with pytest.raises(InputError, match="return_tensors must be one of"):
        fe(clip, sampling_rate=16000, return_tensors="tf")
    with pytest.raises(InputError, match="audio 0 is 150 samples long after padding"):
        fe(clip[:150], sampling_rate=16000, padding="longest")
    for settings, match in [(dict(n_fft=0), "n_fft must be a positive int"),
                            (dict(dither=-1.0), "dither must be a number >= 0.0"),
                            (dict(sampling_rate=8000), "sampling_rate must be >= 16000"),
                            (dict(feature_size=1.5), "feature_size must be a positive int")]:
        with pytest.raises(ConfigError, match=match):
            WhisperFeatureExtractor(**settings)


def test_no_torch_needed():
    """The module imports without torch (NumPy only): checked in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; "
            "from loom.models.whisper.feature_extraction import WhisperFeatureExtractor as W; "
            "import numpy as np; out = W()(np.ones(1000, np.float32) * 0.1, sampling_rate=16000, "
            "return_tensors='np'); print(out['input_features'].shape)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 80, 3000)"


@pytest.mark.parametrize("side", ["right", "left"])
def test_normalize_uses_the_clip_own_samples(side):
    """Hand-built expectation: normalising in the call equals normalising the clip first (the
    reference differs with left padding, see the module docstring)."""
    x = tone(70000, seed=4) * 3 + 0.2
    fe = WhisperFeatureExtractor(padding_side=side)
    manual = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    np.testing.assert_array_equal(fe(x, sampling_rate=16000, do_normalize=True)["input_features"],
                                  fe(manual, sampling_rate=16000)["input_features"])
