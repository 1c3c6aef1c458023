"""Logits processors and stopping criteria: hand-built expectations, and equality with the
reference's processors on random scores."""

from __future__ import annotations

import math

import pytest
import torch
from transformers.generation import logits_process as hf

from loom.errors import ConfigError
from loom.generation.config import GenerationConfig
from loom.generation.logits import (
    MinLength,
    MinP,
    NoRepeatNGram,
    RepetitionPenalty,
    Temperature,
    TopK,
    TopP,
    build_processors,
)
from loom.generation.stopping import EosToken, MaxLength, build_criteria

INF = float("inf")


def test_hand_built_expectations():
    scores = torch.tensor([[2.0, -1.0, 0.5, 3.0, -4.0]])
    ids = torch.tensor([[0, 1, 1]])
    expect = torch.tensor([[1.0, -2.0, 0.5, 3.0, -4.0]])  # positive / 2, negative * 2, once per token
    assert torch.equal(RepetitionPenalty(2.0)(ids, scores), expect)
    assert torch.equal(RepetitionPenalty(2.0, ignore=torch.tensor([1]))(ids, scores),
                       torch.tensor([[2.0, -2.0, 0.5, 3.0, -4.0]]))  # the padded first token is not counted
    assert torch.equal(TopK(2)(ids, scores), torch.tensor([[2.0, -INF, -INF, 3.0, -INF]]))
    assert torch.equal(Temperature(0.5)(ids, scores), scores * 2)
    probs = scores.softmax(-1)[0]  # 3.0: .66, 2.0: .24, 0.5: .05, -1: .01, -4: .001
    assert probs[3] < 0.7 < probs[3] + probs[0]
    assert torch.equal(TopP(0.7)(ids, scores), torch.tensor([[2.0, -INF, -INF, 3.0, -INF]]))
    assert torch.equal(TopP(0.5)(ids, scores), torch.tensor([[-INF, -INF, -INF, 3.0, -INF]]))
    assert torch.equal(TopP(0.5, min_tokens_to_keep=2)(ids, scores), torch.tensor([[2.0, -INF, -INF, 3.0, -INF]]))
    keep = probs >= 0.2 * probs.max()
    assert torch.equal(MinP(0.2)(ids, scores)[0].isfinite(), keep)
    seq = torch.tensor([[3, 4, 3, 2, 3]])  # bigrams (3,4), (4,3), (3,2), (2,3): after 3 come 4 and 2
    assert NoRepeatNGram(2)(seq, scores).isinf().nonzero()[:, 1].tolist() == [2, 4]
    assert MinLength(6, [1, 4])(seq, scores)[0, [1, 4]].isinf().all()
    assert torch.equal(MinLength(5, [1, 4])(seq, scores), scores)


@pytest.mark.parametrize("seed", range(3))
def test_same_as_reference_processors(seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(4, 50, generator=g) * 3
    ids = torch.randint(0, 50, (4, 9), generator=g)
    pairs = [
        (RepetitionPenalty(1.7), hf.RepetitionPenaltyLogitsProcessor(1.7)),
        (RepetitionPenalty(0.5, torch.tensor([0, 2, 3, 1])),
         hf.RepetitionPenaltyLogitsProcessor(0.5, prompt_ignore_length=torch.tensor([0, 2, 3, 1]))),
        (NoRepeatNGram(2), hf.NoRepeatNGramLogitsProcessor(2)),
        (NoRepeatNGram(3), hf.NoRepeatNGramLogitsProcessor(3)),
        (Temperature(0.3), hf.TemperatureLogitsWarper(0.3)),
        (TopK(7), hf.TopKLogitsWarper(7)),
        (TopK(3, 5), hf.TopKLogitsWarper(3, min_tokens_to_keep=5)),
        (TopP(0.3), hf.TopPLogitsWarper(0.3)),
        (TopP(0.95, 3), hf.TopPLogitsWarper(0.95, min_tokens_to_keep=3)),
        (MinP(0.1), hf.MinPLogitsWarper(0.1)),
        (MinP(0.5, 2), hf.MinPLogitsWarper(0.5, min_tokens_to_keep=2)),
        (MinLength(12, [3, 9]), hf.MinLengthLogitsProcessor(12, [3, 9])),
    ]
    for ours, ref in pairs:
        a, b = ours(ids, scores.clone()), ref(ids, scores.clone())
        assert torch.equal(a, b), type(ours).__name__


def test_build_order_and_choice():
    config = GenerationConfig(do_sample=True, temperature=0.5, top_k=5, top_p=0.9, min_p=0.1, repetition_penalty=1.2,
                              no_repeat_ngram_size=2, min_new_tokens=3, eos_token_id=[2, 3])
    names = [type(p).__name__ for p in build_processors(config, prompt_length=4)]
    assert names == ["RepetitionPenalty", "NoRepeatNGram", "MinLength", "Temperature", "TopK", "TopP", "MinP"]
    greedy = GenerationConfig(temperature=0.5, top_k=5, top_p=0.9)
    assert list(build_processors(greedy, 4)) == []  # warpers only when sampling
    beams = build_processors(GenerationConfig(do_sample=True, num_beams=3, eos_token_id=[2, 3]), 4)
    assert [(type(p).__name__, p.k) for p in beams] == [("TopK", 50)]
    criteria = build_criteria(GenerationConfig(eos_token_id=[5, 6]), max_length=4)
    assert [type(c).__name__ for c in criteria] == ["MaxLength", "EosToken"]
    ids = torch.tensor([[1, 2, 5], [1, 2, 7]])
    assert criteria(ids).tolist() == [True, False]
    assert criteria(torch.cat([ids, ids[:, :1]], 1)).tolist() == [True, True]
    assert MaxLength(3)(ids).all() and EosToken([7])(ids).tolist() == [False, True]


def test_generation_config_defaults_and_copies():
    config = GenerationConfig()
    assert (config.max_length, config.top_k, config.top_p, config.num_beams) == (None, 50, 1.0, 1)
    assert config.to_dict() == {}
    changed = config.update(num_beams=4, length_penalty=math.pi)
    assert config.num_beams == 1 and changed.to_dict() == {"num_beams": 4, "length_penalty": math.pi}
    assert GenerationConfig(temperature=0.0).temperature == 0.0  # fine without sampling
    with pytest.raises(ConfigError, match="temperature"):
        config.update(do_sample=True, temperature=0.0)
