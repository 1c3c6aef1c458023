"""The BERT-served tasks against transformers' pipelines on the same tiny checkpoints and
inputs (labels, words and offsets equal, scores within 1e-5), and question-answering (gone
from transformers 5) against expectations built from the model's own forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import loom

ATOL = 1e-5
TEXTS = [
    "My name is Wolfgang and I live in Berlin.",
    "Sarah works at Microsoft in Seattle, unbelievably.",
    "ok",
    "The quick brown fox jumps over the lazy dog near the riverbank at dawn.",
    "Crème brûlée in Zürich costs 12.50 CHF!",
]


def assert_same(ours, ref, path="result"):
    """Equal structure, keys, strings and ints; floats within ATOL."""
    if isinstance(ref, dict):
        assert isinstance(ours, dict) and ours.keys() == ref.keys(), f"{path}: {ours} != {ref}"
        for k in ref:
            assert_same(ours[k], ref[k], f"{path}[{k!r}]")
    elif isinstance(ref, (list, tuple)):
        assert isinstance(ours, type(ref)) and len(ours) == len(ref), f"{path}: {ours} != {ref}"
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(ref, (float, np.floating)):
        assert isinstance(ours, float), f"{path}: {type(ours)}"
        assert abs(ours - float(ref)) <= ATOL, f"{path}: {ours} vs {ref}"
    else:
        assert ours == ref, f"{path}: {ours!r} != {ref!r}"


def pair(task, folder, **kw):
    return loom.pipeline(task, model=str(folder), **kw), transformers.pipeline(task, model=str(folder), **kw)


# -- text-classification ----------------------------------------------------------------


@pytest.fixture(scope="module")
def classify(tiny):
    return pair("text-classification", tiny("BertForSequenceClassification"))


@pytest.mark.parametrize("kw", [{}, {"top_k": 2}, {"top_k": None}, {"function_to_apply": "sigmoid"},
                                {"function_to_apply": "none", "top_k": None}])
def test_text_classification_equals_transformers(classify, kw):
    ours, ref = classify
    assert_same(ours(TEXTS[0], **kw), ref(TEXTS[0], **kw))
    assert_same(ours(TEXTS, **kw), ref(TEXTS, **kw))


def test_text_classification_pairs_and_alias(classify, tiny):
    ours, ref = classify
    pairs = [{"text": "A man eats.", "text_pair": "Someone is eating."},
             {"text": "It rains.", "text_pair": "The sun shines brightly today."}]
    assert_same(ours(pairs, top_k=None), ref(pairs, top_k=None))
    assert_same(ours(pairs[0]), ref(pairs[0]))
    alias = loom.pipeline("sentiment-analysis", model=str(tiny("BertForSequenceClassification")))
    assert alias.task == "text-classification"
    assert_same(alias(TEXTS[1]), ref(TEXTS[1]))
    scores = [d["score"] for d in ours(TEXTS[3], top_k=None)]
    assert max(scores) - min(scores) > 0.05   # the tiny model is not uniform: the check can fail


def test_text_classification_windows_average_the_logits(tiny):
    """long_inputs="window": mean of the logits of overlapping windows, then softmax,
    computed here by hand from the model's forward on each window."""
    folder = tiny("BertForSequenceClassification")
    ours = loom.pipeline("text-classification", model=str(folder), top_k=None)
    long_text = " ".join(TEXTS * 6)   # ~110 tokens, the model takes 64
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    ref_model = transformers.BertForSequenceClassification.from_pretrained(folder).eval()
    win = tok(long_text, truncation=True, max_length=64, stride=16, return_overflowing_tokens=True,
              padding=True, return_tensors="pt")
    win.pop("overflow_to_sample_mapping")
    assert win["input_ids"].shape[0] >= 2
    with torch.no_grad():
        logits = ref_model(**win).logits.mean(0)
    expected = torch.softmax(logits, -1)
    got = {d["label"]: d["score"] for d in ours(long_text, long_inputs="window", stride=16)}
    for i, label in ref_model.config.id2label.items():
        assert abs(got[label] - expected[i].item()) <= ATOL
    # truncate (the default) reads only the first window
    first = {k: v[:1] for k, v in win.items()}
    with torch.no_grad():
        cut = torch.softmax(ref_model(**first).logits[0], -1)
    got = {d["label"]: d["score"] for d in ours(long_text)}
    assert all(abs(got[lb] - cut[i].item()) <= ATOL for i, lb in ref_model.config.id2label.items())
    assert any(abs(got[lb] - expected[i].item()) > 1e-4 for i, lb in ref_model.config.id2label.items())


def test_truncation_is_logged_once(tiny, caplog):
    ours = loom.pipeline("text-classification", model=str(tiny("BertForSequenceClassification")))
    long_text = " ".join(TEXTS * 6)
    with caplog.at_level("WARNING", logger="loom.pipelines"):
        ours([long_text, long_text])
        ours(long_text)
    cut = [r for r in caplog.records if "was cut" in r.getMessage()]
    assert len(cut) == 1 and "long_inputs='window'" in cut[0].getMessage()


# -- token-classification ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ner(tiny):
    return pair("token-classification", tiny("BertForTokenClassification"))


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_equals_transformers(ner, strategy):
    ours, ref = ner
    for kw in ({"aggregation_strategy": strategy},
               {"aggregation_strategy": strategy, "ignore_labels": []}):
        assert_same(ours(TEXTS, **kw), ref(TEXTS, **kw))
    got = ours(TEXTS[1], aggregation_strategy=strategy, ignore_labels=[])
    assert got and all(TEXTS[1][e["start"]:e["end"]] for e in got)


def test_token_classification_alias_and_words(ner, tiny):
    ours, ref = ner
    alias = loom.pipeline("ner", model=str(tiny("BertForTokenClassification")))
    assert_same(alias(TEXTS[1]), ref(TEXTS[1]))
    tokens = ours(TEXTS[1], ignore_labels=[])
    assert any(e["word"].startswith("##") for e in tokens)   # "unbelievably" is split
    words = ours(TEXTS[1], aggregation_strategy="first", ignore_labels=[])
    assert not any("##" in e["word"] for e in words)   # word strategies never split a word


@pytest.mark.parametrize("strategy", ["simple", "first", "max"])
def test_token_classification_stride_equals_transformers(tiny, strategy):
    """A tokenizer that takes 16 tokens: long texts are read in windows sharing `stride`."""
    folder = tiny("BertForTokenClassification", model_max_length=16)
    ours, ref = pair("token-classification", folder)
    kw = dict(aggregation_strategy=strategy, stride=4, ignore_labels=[])
    got = ours(TEXTS[3], **kw)
    assert_same(got, ref(TEXTS[3], **kw))
    assert got[-1]["end"] > 40   # the entities reach past the first window
    assert_same(ours(TEXTS, **kw), ref(TEXTS, **kw))


# -- fill-mask ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fill(tiny):
    return pair("fill-mask", tiny("BertForMaskedLM"))


@pytest.mark.parametrize("kw", [{}, {"top_k": 3}, {"targets": ["capital", "city", "river"]},
                                {"targets": "city"}])
def test_fill_mask_equals_transformers(fill, kw):
    ours, ref = fill
    texts = ["Paris is the [MASK] of France.", "I [MASK] this movie.", "[MASK] is [MASK] today."]
    assert_same(ours(texts[0], **kw), ref(texts[0], **kw))
    assert_same(ours(texts, **kw), ref(texts, **kw))


# -- zero-shot-classification -------------------------------------------------------------


@pytest.fixture(scope="module")
def zero_shot(tiny):
    return pair("zero-shot-classification", tiny("NLI"))


@pytest.mark.parametrize("kw", [{}, {"multi_label": True}, {"hypothesis_template": "It is about {}."}])
def test_zero_shot_equals_transformers(zero_shot, kw):
    ours, ref = zero_shot
    labels = ["travel", "cooking", "dancing", "politics"]
    assert_same(ours(TEXTS[0], candidate_labels=labels, **kw), ref(TEXTS[0], candidate_labels=labels, **kw))
    assert_same(ours(TEXTS, labels, **kw), ref(TEXTS, labels, **kw))
    assert_same(ours(TEXTS[1], candidate_labels="travel, sports"),
                ref(TEXTS[1], candidate_labels="travel, sports"))
    assert_same(ours(TEXTS[1], candidate_labels=["travel"]), ref(TEXTS[1], candidate_labels=["travel"]))


def test_zero_shot_needs_an_entailment_label(tiny):
    with pytest.raises(loom.ConfigError, match="entailment"):
        loom.pipeline("zero-shot-classification", model=str(tiny("BertForSequenceClassification")))


# -- feature-extraction --------------------------------------------------------------------


def test_feature_extraction_equals_transformers(tiny):
    ours, ref = pair("feature-extraction", tiny("BertModel"))
    assert_same(ours(TEXTS[0]), ref(TEXTS[0]))
    assert_same(ours(TEXTS), ref(TEXTS))
    t = ours(TEXTS[1], return_tensors=True)
    assert isinstance(t, torch.Tensor) and t.shape == ref(TEXTS[1], return_tensors=True).shape


def test_feature_extraction_pooling_and_windows(tiny):
    """Pooled vectors and the window mean, from the model's forward by hand."""
    folder = tiny("BertModel")
    ours = loom.pipeline("feature-extraction", model=str(folder))
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.BertModel.from_pretrained(folder).eval()
    enc = tok(TEXTS[1], return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state[0]
    mean = hidden.mean(0)
    assert np.abs(np.array(ours(TEXTS[1], pooling="mean")) - mean.numpy()).max() <= ATOL
    assert np.abs(np.array(ours(TEXTS[1], pooling="cls")) - hidden[0].numpy()).max() <= ATOL
    assert np.abs(np.array(ours(TEXTS[1], pooling="max")) - hidden.amax(0).numpy()).max() <= ATOL
    unit = np.array(ours(TEXTS[1], pooling="mean", normalize=True))
    assert np.abs(unit - (mean / mean.norm()).numpy()).max() <= ATOL
    long_text = " ".join(TEXTS * 6)
    win = tok(long_text, truncation=True, max_length=64, stride=16, return_overflowing_tokens=True,
              padding=True, return_tensors="pt")
    win.pop("overflow_to_sample_mapping")
    with torch.no_grad():
        h = model(**win).last_hidden_state
    m = win["attention_mask"].unsqueeze(-1).float()
    expected = ((h * m).sum(1) / m.sum(1)).mean(0)
    got = ours(long_text, pooling="mean", long_inputs="window", stride=16, return_tensors="np")
    assert got.shape == (32,) and np.abs(got - expected.numpy()).max() <= ATOL
    with pytest.raises(loom.InputError, match="needs pooling"):
        ours(long_text, long_inputs="window")


def test_sentence_similarity_is_cosine_of_pooled_vectors(tiny):
    folder = tiny("BertModel")
    sim = loom.pipeline("sentence-similarity", model=str(folder))
    fe = loom.pipeline("feature-extraction", model=str(folder), pooling="mean", return_tensors="np")
    source, cands = TEXTS[0], TEXTS[1:]
    vecs = [fe(t) for t in [source, *cands]]
    expected = [float(v @ vecs[0] / np.linalg.norm(v) / np.linalg.norm(vecs[0])) for v in vecs[1:]]
    got = sim({"source_sentence": source, "sentences": cands})
    assert np.abs(np.array(got) - expected).max() <= ATOL
    assert sim(source, sentences=cands) == got
    both = sim([{"source_sentence": source, "sentences": cands},
                {"source_sentence": cands[0], "sentences": [source]}])
    assert both[0] == pytest.approx(got, abs=ATOL) and both[1] == pytest.approx([got[0]], abs=ATOL)


# -- question-answering (removed from transformers 5: expectations from the model) --------


def expected_answers(folder, question, context, top_k, max_answer_len=15, max_len=64, stride=32,
                     impossible=False):
    """Brute force over every (start, end) pair of context tokens of every window, from the
    model's own logits: score = softmax(start)[s] * softmax(end)[e] over context + [CLS]."""
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.BertForQuestionAnswering.from_pretrained(folder).eval()
    enc = tok(question, context, truncation="only_second", max_length=max_len, stride=stride,
              return_overflowing_tokens=True, return_offsets_mapping=True)
    found, null = [], 1.0
    for w in range(len(enc["input_ids"])):
        ids = torch.tensor([enc["input_ids"][w]])
        with torch.no_grad():
            out = model(input_ids=ids, token_type_ids=torch.tensor([enc["token_type_ids"][w]]))
        seq = enc.sequence_ids(w)
        ctx = [s == 1 for s in seq]
        keep = torch.tensor([c or t == tok.cls_token_id for c, t in zip(ctx, enc["input_ids"][w])])
        p_s = torch.softmax(out.start_logits[0].masked_fill(~keep, -1e4), -1)
        p_e = torch.softmax(out.end_logits[0].masked_fill(~keep, -1e4), -1)
        null = min(null, (p_s[0] * p_e[0]).item())
        for s in range(len(ids[0])):
            for e in range(s, min(s + max_answer_len, len(ids[0]))):
                if ctx[s] and ctx[e]:
                    a = enc.word_to_chars(w, enc.token_to_word(w, s), sequence_index=1).start
                    b = enc.word_to_chars(w, enc.token_to_word(w, e), sequence_index=1).end
                    found.append(((p_s[s] * p_e[e]).item(), a, b))
    if impossible:
        found.append((null, 0, 0))
    found.sort(key=lambda x: -x[0])
    return [{"score": s, "start": a, "end": b, "answer": context[a:b]} for s, a, b in found[:top_k]]


def test_question_answering_equals_brute_force(tiny):
    folder = tiny("BertForQuestionAnswering")
    qa = loom.pipeline("question-answering", model=str(folder))
    question, context = "Where does Wolfgang live?", TEXTS[0] + " " + TEXTS[1]
    assert_same(qa(question=question, context=context),
                expected_answers(folder, question, context, 1)[0])
    assert_same(qa({"question": question, "context": context}, top_k=4),
                expected_answers(folder, question, context, 4))
    long_context = " ".join(TEXTS * 5)   # several windows of 64 tokens
    got = qa(question=question, context=long_context, top_k=3, handle_impossible_answer=True,
             max_seq_len=64, doc_stride=32)
    assert_same(got, expected_answers(folder, question, long_context, 3, impossible=True))
    assert any(a["start"] > 300 for a in qa(question=question, context=long_context, top_k=20,
                                             max_seq_len=64, doc_stride=32))
    many = qa(question=[question, "Who?"], context=[context, TEXTS[3]])
    assert_same(many, [expected_answers(folder, question, context, 1)[0],
                       expected_answers(folder, "Who?", TEXTS[3], 1)[0]])
    short = qa(question=question, context=context, max_answer_len=1, top_k=5)
    assert all(len(a["answer"].split()) == 1 for a in short)
