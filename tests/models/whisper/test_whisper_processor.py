"""WhisperProcessor against transformers' on the tokenizer of test_whisper_tokenizer and a
small feature extractor (1 s windows, 8 mel bins): features, labels, decoding, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

import loom
from loom.auto import AutoProcessor
from loom.errors import InputError
from loom.models.whisper import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer
from tests.helpers import assert_close
from tests.models.whisper.tiny import make_pair, save_reference_tokenizer


@pytest.fixture
def saved(tmp_path):
    tokenizer = transformers.AutoTokenizer.from_pretrained(save_reference_tokenizer(tmp_path / "tokenizer"))
    features = transformers.WhisperFeatureExtractor(feature_size=8, chunk_length=1)
    ref = transformers.WhisperProcessor(feature_extractor=features, tokenizer=tokenizer)
    ref.save_pretrained(tmp_path / "ref")
    return ref, tmp_path / "ref"


def audio(n: int = 2, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(8000 + 3000 * i).astype(np.float32) * 0.1 for i in range(n)]


def test_call_parity(saved):
    ref, path = saved
    ours = AutoProcessor.from_pretrained(path)
    assert type(ours) is WhisperProcessor
    assert isinstance(ours.feature_extractor, WhisperFeatureExtractor) and isinstance(ours.tokenizer, WhisperTokenizer)
    a = ours(audio(), sampling_rate=16000, return_tensors="pt")
    b = ref(audio(), sampling_rate=16000, return_tensors="pt")
    assert a["input_features"].shape == b["input_features"].shape == (2, 8, 100)
    assert_close(a["input_features"], b["input_features"], 1e-4, "input_features")
    texts = ["the cat", "in the hat"]
    assert ours(text=texts)["input_ids"] == ref(text=texts)["input_ids"]
    both_a = ours(audio(), sampling_rate=16000, text=texts[0])
    both_b = ref(audio(), sampling_rate=16000, text=texts[0])
    assert both_a["labels"] == both_b["labels"] and "input_ids" not in both_a
    ids = ref(text=texts)["input_ids"]
    assert ours.batch_decode(ids, skip_special_tokens=True) == ref.batch_decode(ids, skip_special_tokens=True)
    assert ours.decode(ids[0]) == ref.decode(ids[0])
    assert ours.get_decoder_prompt_ids(language="fr", task="transcribe") == \
        ref.get_decoder_prompt_ids(language="fr", task="transcribe")
    with pytest.raises(InputError, match="audio= and/or text="):
        ours()
    with pytest.raises(InputError, match="no part called here takes the argument 'images_mode'"):
        ours(text="a", images_mode=1)


def test_save_load_both_ways(saved, tmp_path):
    ref, path = saved
    ours = WhisperProcessor.from_pretrained(path)
    ours.save_pretrained(tmp_path / "loom")
    written = json.loads((tmp_path / "loom" / "processor_config.json").read_text())
    assert written["processor_class"] == "WhisperProcessor"
    back = transformers.WhisperProcessor.from_pretrained(tmp_path / "loom")
    again = WhisperProcessor.from_pretrained(tmp_path / "loom")
    a = again(audio(), sampling_rate=16000, text="the cat")
    b = back(audio(), sampling_rate=16000, text="the cat")
    assert_close(torch.as_tensor(np.asarray(a["input_features"])), torch.as_tensor(np.asarray(b["input_features"])),
                 1e-4, "features after save/load")
    assert a["labels"] == b["labels"]


def test_features_to_transcript(saved, tmp_path):
    """Processor -> model.generate -> processor.batch_decode, loom and the reference side by side."""
    ref_processor, path = saved
    ours_model, ref_model, _ = make_pair(tmp_path)
    processor = WhisperProcessor.from_pretrained(path)
    x = processor(audio(), sampling_rate=16000, return_tensors="pt")["input_features"]
    y = ref_processor(audio(), sampling_rate=16000, return_tensors="pt")["input_features"]
    a = ours_model.generate(x, max_new_tokens=8, language="en")
    b = ref_model.generate(y, max_new_tokens=8, language="en")
    assert a.tolist() == b.tolist()
    assert processor.batch_decode(a) == ref_processor.batch_decode(b)
    assert isinstance(loom.WhisperProcessor, type)


def test_generic_processor_bundles_tokenizer_and_feature_extractor(saved, tmp_path):
    """A folder with a tokenizer and audio settings that names no processor class: loom's
    generic Processor (and AutoProcessor) bundle both parts."""
    import shutil

    from loom.preprocessing.processor import Processor

    ref, path = saved
    plain = tmp_path / "plain"
    shutil.copytree(path, plain)
    (plain / "processor_config.json").unlink(missing_ok=True)  # transformers 5 nests the audio settings there
    ref.feature_extractor.save_pretrained(plain)  # as a lone preprocessor_config.json instead
    for name in ("preprocessor_config.json", "tokenizer_config.json"):
        settings = json.loads((plain / name).read_text())
        settings.pop("processor_class", None)
        (plain / name).write_text(json.dumps(settings))
    for load in (Processor.from_pretrained, loom.AutoProcessor.from_pretrained):
        generic = load(plain)
        assert type(generic) is Processor and set(generic.parts) == {"tokenizer", "feature_extractor"}
        x = generic(audio=audio(1), sampling_rate=16000, return_tensors="np")["input_features"]
        y = ref(audio=audio(1), sampling_rate=16000, return_tensors="np")["input_features"]
        assert np.abs(x - y).max() <= 1e-5
        assert generic.decode([5, 6]) == ref.decode([5, 6])
