"""automatic-speech-recognition against transformers' pipeline on a tiny random Whisper whose
vocabulary is a small byte-level BPE tokenizer with Whisper's special and timestamp tokens,
and a feature extractor of 1-second windows: text, timestamped chunks and chunked long audio
equal the reference's; batching keeps order; bad input is named."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
import transformers

import loom
from loom.models.whisper.languages import LANGUAGES
from tests.models.whisper.tiny import make_reference, save_reference_tokenizer
from tests.pipelines.test_text_tasks import assert_same

RATE = 16000


@pytest.fixture(scope="module")
def whisper_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-whisper-asr")
    tok = transformers.AutoTokenizer.from_pretrained(save_reference_tokenizer(folder))
    ids = tok.convert_tokens_to_ids
    eos = ids("<|endoftext|>")
    ref = make_reference(seed=3, std=0.6, multilingual=False, vocab_size=len(tok), pad_token_id=eos,
                         bos_token_id=eos, eos_token_id=eos, decoder_start_token_id=ids("<|startoftranscript|>"),
                         max_target_positions=64)
    gen = ref.generation_config
    gen.lang_to_id = {f"<|{code}|>": ids(f"<|{code}|>") for code in LANGUAGES}
    gen.task_to_id = {"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")}
    gen.no_timestamps_token_id, gen.is_multilingual = ids("<|notimestamps|>"), True
    gen._from_model_config = False  # else transformers rebuilds it from config.json on load
    ref.save_pretrained(folder)
    transformers.WhisperFeatureExtractor(feature_size=8, chunk_length=1).save_pretrained(folder)
    return folder


def clip(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def pipes(whisper_folder):
    ours = loom.pipeline("automatic-speech-recognition", model=str(whisper_folder))
    ref = transformers.pipeline("automatic-speech-recognition", model=str(whisper_folder))
    return ours, ref


GEN = dict(max_new_tokens=12, language="en")


@pytest.mark.parametrize("seconds", [0.4, 1.0])
def test_short_audio_equals_transformers(pipes, seconds):
    ours, ref = pipes
    audio = clip(seconds, seed=int(seconds * 10))
    want = ref(audio.copy(), generate_kwargs=GEN)
    assert_same(ours(audio, **GEN), want)
    assert want["text"].strip()  # the tiny model does say something
    timed = ref(audio.copy(), return_timestamps=True, generate_kwargs=GEN)
    assert_same(ours(audio, return_timestamps=True, **GEN), timed)


def test_long_audio_in_overlapping_chunks_equals_transformers(pipes):
    ours, ref = pipes
    audio = clip(3.3, seed=5)
    for kwargs in (dict(chunk_length_s=1.0), dict(chunk_length_s=1.0, stride_length_s=(0.2, 0.1))):
        want = ref(audio.copy(), generate_kwargs=GEN, **kwargs)
        assert_same(ours(audio, **kwargs, **GEN), want)
        timed = ref(audio.copy(), return_timestamps=True, generate_kwargs=GEN, **kwargs)
        assert_same(ours(audio, return_timestamps=True, **kwargs, **GEN), timed)
        assert len(timed["chunks"]) >= 1


@pytest.mark.parametrize("language", ["en", None])
def test_return_language_equals_transformers(pipes, language):
    ours, ref = pipes
    gen = {**GEN, "language": language}
    for seconds, kwargs in ((0.8, dict()), (2.2, dict(chunk_length_s=1.0)),
                            (2.2, dict(return_timestamps=True, chunk_length_s=1.0))):
        audio = clip(seconds, seed=7)
        want = ref(audio.copy(), return_language=True, generate_kwargs=gen, **kwargs)
        got = ours(audio, return_language=True, **gen, **kwargs)
        assert_same(got, want)
        assert all(c["language"] for c in got["chunks"])


def test_batches_keep_order_and_values(whisper_folder, pipes):
    ours, _ = pipes
    audios = [clip(s, seed=i) for i, s in enumerate((0.3, 0.9, 0.5, 2.5))]
    one = [ours(a, chunk_length_s=1.0, **GEN) for a in audios]
    batched = loom.pipeline("automatic-speech-recognition", model=str(whisper_folder), batch_size=3)
    assert batched(audios, chunk_length_s=1.0, **GEN) == one


def test_files_bytes_and_dicts(pipes, tmp_path):
    ours, _ = pipes
    audio = clip(0.7, seed=2)
    want = ours(audio, **GEN)
    path = tmp_path / "speech.wav"
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    assert ours(str(path), **GEN) == want
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, RATE, format="FLAC", subtype="PCM_24")
    flac = ours(buffer.getvalue(), **GEN)["text"]
    assert isinstance(flac, str)
    assert ours({"raw": audio, "sampling_rate": RATE}, **GEN) == want
    assert ours({"array": audio, "sampling_rate": RATE}, **GEN) == want
    stereo = np.stack([audio, audio])  # (channels, samples): averaged to mono
    assert ours(stereo, **GEN) == want


def test_bad_inputs_are_named(pipes, tmp_path):
    ours, _ = pipes
    with pytest.raises(loom.InputError, match="does not exist"):
        ours(str(tmp_path / "missing.wav"))
    with pytest.raises(loom.InputError, match="8000 Hz.*16000 Hz"):
        ours({"raw": clip(0.5), "sampling_rate": 8000})
    with pytest.raises(loom.InputError, match="empty"):
        ours(np.zeros(0, dtype=np.float32))
    with pytest.raises(loom.InputError, match=r"inputs\[1\]"):
        ours([clip(0.5), 42])
    with pytest.raises(loom.InputError, match="empty list"):
        ours([])
    with pytest.raises(loom.InputError, match="None"):
        ours(None)
    with pytest.raises(loom.InputError, match="dtype int16"):
        ours(np.ones(100, dtype=np.int16))
    with pytest.raises(loom.InputError, match="not an audio file"):
        ours(b"not audio at all")
    with pytest.raises(loom.InputError, match="word timestamps"):
        ours(clip(0.5), return_timestamps="word")
    with pytest.raises(loom.InputError, match="chunk_length_s"):
        ours(clip(0.5), chunk_length_s=-1)


def test_command_line_transcribes_a_file(whisper_folder, pipes, tmp_path, capsys):
    from loom.cli import main

    ours, _ = pipes
    audio = clip(0.6, seed=9)
    path = tmp_path / "a.wav"
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    assert main(["run", "automatic-speech-recognition", str(path), "--model", str(whisper_folder),
                 "--param", "max_new_tokens=6", "--param", "language=en", "--json"]) == 0
    rows = __import__("json").loads(capsys.readouterr().out)
    assert rows == [{"input": str(path), "result": ours(audio, max_new_tokens=6, language="en")}]
