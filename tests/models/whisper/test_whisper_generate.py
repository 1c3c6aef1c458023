"""Whisper's `generate` against transformers' on tiny random models: the decoder prompt
(language, task, timestamps, detection, forced_decoder_ids), greedy and beam search token for
token, the timestamp rules and the seeking between segments, and the input checks."""

from __future__ import annotations

import json

import pytest
import torch

import loom
from loom.errors import InputError
from loom.generation.mixin import GenerationMixin
from loom.models.whisper.generation import WhisperTimestamps, split_segments
from tests.models.whisper.tiny import EOS, LANG_TO_ID, NO_TIMESTAMPS, START, features, make_pair

CASES = {
    "detect-language": dict(),
    "language": dict(language="fr"),
    "language-task": dict(language="German", task="translate"),
    "task-detect": dict(task="transcribe"),
    "timestamps": dict(return_timestamps=True),
    "per-row-languages-timestamps": dict(language=["en", "de"], return_timestamps=True),
    "beams": dict(num_beams=3, language="en"),
    "beams-timestamps": dict(num_beams=3, return_timestamps=True, language="<|de|>"),
    "beams-return-2": dict(num_beams=3, num_return_sequences=2),
    "no-cache": dict(use_cache=False, language="fr", return_timestamps=True),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two reference weight draws: one decodes mostly text, one emits timestamp pairs even
    without return_timestamps (so the reference seeks and decodes again)."""
    pairs = {}
    for seed in (2, 0):
        ours, ref, folder = make_pair(tmp_path_factory.mktemp(f"w{seed}"), seed=seed)
        pairs[seed] = ours, ref, folder
    return pairs


# Seed 0 decodes in many short passes (slow): a few cases cover it.
@pytest.mark.parametrize("seed,case", [(2, c) for c in CASES] + [(0, "language"), (0, "beams-timestamps"),
                                                                  (0, "timestamps")])
def test_generate_token_for_token(models, seed, case):
    ours, ref, _ = models[seed]
    x = features()
    kwargs = CASES[case]
    a = ours.generate(x, max_new_tokens=12, **kwargs)
    b = ref.generate(x, max_new_tokens=12, **kwargs)
    assert a.dtype == torch.long and a.tolist() == b.tolist()


def test_outputs_exercise_every_rule(models):
    """The parity cases above are not vacuous: rows end early (padding), timestamps come in
    pairs, and decoding seeks (outputs longer than max_new_tokens)."""
    ours, _, _ = models[2]
    x = features()
    calls = []
    original = GenerationMixin.generate

    def counting(self, *args, **kwargs):
        calls.append(kwargs["decoder_input_ids"].tolist())
        return original(self, *args, **kwargs)

    GenerationMixin.generate = counting
    try:
        plain = ours.generate(x, max_new_tokens=12, language="fr")
        stamped = ours.generate(x, max_new_tokens=12, return_timestamps=True)
    finally:
        GenerationMixin.generate = original
    assert calls[0] == [[START, LANG_TO_ID["<|fr|>"], 57, NO_TIMESTAMPS]] * 2  # language -> transcribe
    assert calls[1][0][:1] == [START] and calls[1][0][-1] != NO_TIMESTAMPS and len(calls[1][0]) == 2
    assert len(calls) > 2 and stamped.shape[1] > 12  # seeking: several passes, tokens concatenated
    assert plain.shape == (2, 12) and len(set(plain.flatten().tolist())) > 2
    assert stamped[1, -1] == EOS and stamped[0, -1] != EOS  # row 1 ended first: padded on the right
    assert bool((stamped[:, 0] > NO_TIMESTAMPS).all())  # the first generated token is a timestamp
    zero_shot, _, _ = models[0]
    long = zero_shot.generate(x, max_new_tokens=12, language="fr")
    assert long.shape[1] > 12  # timestamp pairs without return_timestamps also make the reference seek


def test_generation_config_file_round_trip(models, tmp_path):
    ours, ref, folder = models[2]
    saved = json.loads((folder / "generation_config.json").read_text())
    assert saved["lang_to_id"] == LANG_TO_ID and ours.generation_config.extra["no_timestamps_token_id"] == 61
    ours.save_pretrained(tmp_path / "loom")
    again = loom.WhisperForConditionalGeneration.from_pretrained(tmp_path / "loom")
    x = features()
    assert again.generate(x, max_new_tokens=8, language="de").tolist() == \
        ref.generate(x, max_new_tokens=8, language="de").tolist()


def test_forced_decoder_ids_and_prompts(models):
    ours, ref, _ = models[2]
    x = features()
    for forced in ([[1, 53], [2, 57], [3, 61]], [[1, None], [2, 56]]):
        ours_gen = ours.generation_config.update()
        ours_gen.extra["forced_decoder_ids"] = forced
        ref_gen = ref.generation_config.__class__.from_dict(ref.generation_config.to_dict())
        ref_gen.forced_decoder_ids = forced
        a = ours.generate(x, ours_gen, max_new_tokens=10)
        b = ref.generate(x, ref_gen, max_new_tokens=10)
        assert a.tolist() == b.tolist()
    prompt = torch.tensor([59, 20, 30, 40])  # <|startofprev|> and a text prompt
    given = torch.tensor([[START, 53, 57, NO_TIMESTAMPS, 20]] * 2)  # a ready decoder prompt: first pass only
    for kwargs in (dict(prompt_ids=prompt), dict(return_timestamps=True, prompt_ids=prompt),
                   dict(decoder_input_ids=given), dict(decoder_input_ids=given, return_timestamps=True),
                   dict(attention_mask=torch.ones(2, 100, dtype=torch.long), language="en")):
        a = ours.generate(x, max_new_tokens=10, **kwargs)
        b = ref.generate(x, max_new_tokens=10, **kwargs)
        assert a.tolist() == b.tolist(), kwargs


def test_short_audio_and_dict_output(models):
    ours, ref, _ = models[2]
    x = features()[:, :, :70]  # less than the 100 frames of a full window: padded with zeros
    for kwargs in (dict(language="fr"), dict(language="en", return_timestamps=True)):
        assert ours.generate(x, max_new_tokens=10, **kwargs).tolist() == \
            ref.generate(x, max_new_tokens=10, **kwargs).tolist()
    # The reference cannot detect the language of short audio (its encoder refuses < 100 frames);
    # loom detects it on the zero-padded window, the window the transcription then decodes.
    detected = ours.generate(x, max_new_tokens=10)
    padded = torch.nn.functional.pad(x, (0, 30))
    assert detected.tolist() == ref.generate(padded, max_new_tokens=10).tolist()
    a = ours.generate(features(), max_new_tokens=5, language="en", return_dict_in_generate=True, output_scores=True)
    b = ref.generate(features(), max_new_tokens=5, language="en", return_dict_in_generate=True, output_scores=True)
    assert a.sequences.tolist() == b.sequences.tolist()  # as the reference: prompt included here
    assert len(a.scores) == len(b.scores) == 5
    assert max(float((s - t).abs().max()) for s, t in zip(a.scores, b.scores)) <= 1e-4


def test_timestamp_rules():
    rules = WhisperTimestamps(no_timestamps_token_id=5, eos_token_id=3, begin_index=2, max_initial_timestamp_index=2)
    scores = torch.zeros(4, 12)
    ids = torch.tensor([[1, 2], [1, 2], [1, 2], [1, 2]])
    first = rules(ids, scores)
    assert torch.isinf(first[:, :6]).all() and torch.isfinite(first[:, 6:9]).all() and torch.isinf(first[:, 9:]).all()
    seqs = torch.tensor([[1, 2, 7, 0], [1, 2, 7, 8], [1, 2, 0, 9], [1, 2, 8, 8]])
    text_first = torch.zeros(4, 12)
    text_first[:, :5] = 3.0  # text outweighs the timestamps: only the pairing rules act
    out = rules(seqs, text_first)
    allowed = [torch.isfinite(row).nonzero().flatten().tolist() for row in out]
    assert allowed[0] == [0, 1, 2, 3, 4, 8, 9, 10, 11]  # after text: a later timestamp, never <|notimestamps|>
    assert allowed[1] == [0, 1, 2, 3, 4]  # a closed pair: text (or eos) must follow
    assert allowed[2] == [3, 4, 9, 10, 11]  # an open timestamp: no text below eos, a time >= the open one
    assert allowed[3] == [0, 1, 2, 3, 4]
    text_heavy = torch.zeros(1, 12)
    text_heavy[0, 6:] = 1.0  # the timestamps together outweigh any text token
    heavy = rules(torch.tensor([[1, 2, 7, 0]]), text_heavy)
    assert torch.isinf(heavy[0, :6]).all()


def test_split_segments():
    begin = 10
    assert split_segments([10, 1, 2, 14, 14, 3, 4], begin, 100) == ([10, 1, 2, 14, 14], 8)
    assert split_segments([10, 1, 2, 14, 14, 3, 15], begin, 100) == ([10, 1, 2, 14, 14, 3, 15], 100)
    assert split_segments([1, 2, 3], begin, 60) == ([1, 2, 3], 60)
    assert split_segments([10, 10, 1], begin, 60) == ([10, 10], 60)  # no progress: done, not an endless loop


def test_errors(models):
    ours, _, folder = models[2]
    x = features()
    with pytest.raises(InputError, match="unsupported language 'klingon'"):
        ours.generate(x, language="klingon")
    with pytest.raises(InputError, match=r"'spanish' \(<\|es\|>\) is not one of this model's languages"):
        ours.generate(x, language="spanish")
    with pytest.raises(InputError, match=r"task 'summarize'; it must be one of \['translate', 'transcribe'\]"):
        ours.generate(x, task="summarize")
    with pytest.raises(InputError, match="list of 2 strings"):
        ours.generate(x, language=["en"])
    with pytest.raises(InputError, match="max_target_positions=40"):
        ours.generate(x, max_new_tokens=38, language="en")
    with pytest.raises(InputError, match="long-form"):
        ours.generate(torch.randn(1, 8, 120))
    english = loom.WhisperForConditionalGeneration.from_pretrained(folder)
    english.generation_config.extra["is_multilingual"] = False
    with pytest.raises(InputError, match="is_multilingual=false"):
        english.generate(x, language="en")
    english.generation_config.extra.clear()
    with pytest.raises(InputError, match="no_timestamps_token_id"):
        english.generate(x, return_timestamps=True)
    with pytest.raises(InputError, match="lang_to_id"):
        english.generate(x, language="en")
    assert english.generate(x, max_new_tokens=3).shape == (2, 3)  # no prompt settings: start token only
