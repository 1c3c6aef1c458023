"""`pipeline()` itself: tasks and aliases, defaults, loading, batching (batched equals
unbatched, in input order, length-sorted), streams and Datasets, device and dtype, bad
input, and `loom run`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

import loom
from loom.pipelines import TASKS
from tests.helpers import minilm_dir
from tests.pipelines.test_text_tasks import TEXTS, assert_same

MIXED = [TEXTS[i % len(TEXTS)] * (1 + i % 3) for i in range(11)]   # 11 texts, 3..60 tokens


# -- tasks, aliases and errors ----------------------------------------------------------------


def test_unknown_task_lists_the_tasks():
    with pytest.raises(loom.InputError) as e:
        loom.pipeline("text-clasification", model="x")
    for task in ("text-classification", "fill-mask", "ner", "question-answering"):
        assert task in str(e.value)


@pytest.mark.parametrize("task", ["summarization", "translation", "translation_en_to_fr", "text2text-generation",
                                  "automatic-speech-recognition"])
def test_seq2seq_tasks_without_a_model_ask_for_one(task):
    with pytest.raises(loom.InputError, match="has no default model: name one with model="):
        loom.pipeline(task)


@pytest.mark.parametrize("task", ["text-classification", "token-classification", "fill-mask",
                                  "question-answering", "zero-shot-classification",
                                  "image-classification", "image-feature-extraction",
                                  "zero-shot-image-classification"])
def test_tasks_without_a_default_ask_for_a_model(task):
    with pytest.raises(loom.InputError, match="no default model: name one with model="):
        loom.pipeline(task)


def test_task_inferred_from_the_checkpoint(tiny):
    pipe = loom.pipeline(model=str(tiny("BertForTokenClassification")))
    assert pipe.task == "token-classification"
    assert loom.pipeline(model=str(tiny("BertForMaskedLM"))).task == "fill-mask"
    assert loom.pipeline(model=str(tiny("BertModel"))).task == "feature-extraction"
    with pytest.raises(loom.InputError, match="needs a task or a model"):
        loom.pipeline()


def test_wrong_modality_is_named(pipes, tmp_path):
    from PIL import Image

    image = Image.new("RGB", (8, 8))
    with pytest.raises(loom.InputError, match=r"inputs\[1\] must be a str, found Image"):
        pipes["text-classification"](["ok", image])
    with pytest.raises(loom.InputError, match="must be a str, found ndarray"):
        pipes["feature-extraction"](np.zeros((4, 4, 3)))
    with pytest.raises(loom.ConfigError, match="'masked-lm' model and model_type 'vit'"):
        folder = tmp_path / "vit"
        transformers.ViTModel(transformers.ViTConfig(hidden_size=32, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=8,
                                                     image_size=16, patch_size=8)).save_pretrained(folder)
        loom.pipeline("fill-mask", model=str(folder))


def test_loaded_model_and_tokenizer_objects(tiny):
    folder = tiny("BertForSequenceClassification")
    model = loom.BertForSequenceClassification.from_pretrained(folder)
    tok = loom.AutoTokenizer.from_pretrained(folder)
    by_object = loom.pipeline("text-classification", model=model, tokenizer=tok)
    by_path = loom.pipeline("text-classification", model=str(folder))
    assert by_object.model is model
    assert_same(by_object(TEXTS, top_k=None), by_path(TEXTS, top_k=None))
    with pytest.raises(loom.InputError, match="needs tokenizer="):
        loom.pipeline("text-classification", model=model)
    with pytest.raises(loom.InputError, match="needs a BertForSequenceClassification, found BertModel"):
        loom.pipeline("text-classification", model=loom.BertModel.from_pretrained(folder), tokenizer=tok)
    with pytest.raises(loom.InputError, match="model must be"):
        loom.pipeline("text-classification", model=42)


def test_call_parameters_are_checked(tiny):
    pipe = loom.pipeline("text-classification", model=str(tiny("BertForSequenceClassification")))
    with pytest.raises(loom.InputError, match="unknown argument.*topk.*takes.*top_k"):
        pipe("hi", topk=2)
    with pytest.raises(loom.InputError, match="unknown argument"):
        loom.pipeline("text-classification", model=str(tiny("BertForSequenceClassification")), bogus=1)
    assert pipe(inputs="hi") == pipe("hi")   # inputs= by keyword, as in transformers
    for bad in ({"top_k": 0}, {"function_to_apply": "tanh"}, {"long_inputs": "all"},
                {"max_length": 10_000}, {"stride": 63, "long_inputs": "window"}):
        with pytest.raises(loom.InputError, match=next(iter(bad))):
            pipe("hi", **bad)
    ner = loom.pipeline("ner", model=str(tiny("BertForTokenClassification")))
    with pytest.raises(loom.InputError, match="aggregation_strategy"):
        ner("hi", aggregation_strategy="longest")
    with pytest.raises(loom.InputError, match="needs an aggregation_strategy"):
        ner("hi", stride=4)
    # parameters given to pipeline() become the defaults of every call
    fixed = loom.pipeline("text-classification", model=str(tiny("BertForSequenceClassification")), top_k=2)
    assert len(fixed("hi")) == 2 and len(fixed("hi", top_k=1)) == 1


# -- bad input ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipes(tiny):
    return {task: loom.pipeline(task, model=str(tiny(name))) for task, name in [
        ("text-classification", "BertForSequenceClassification"),
        ("token-classification", "BertForTokenClassification"),
        ("fill-mask", "BertForMaskedLM"),
        ("question-answering", "BertForQuestionAnswering"),
        ("zero-shot-classification", "NLI"),
        ("feature-extraction", "BertModel"),
        ("sentence-similarity", "BertModel"),
    ]}


def good_input(task):
    return {"fill-mask": "a [MASK] b", "question-answering": {"question": "q?", "context": "c d"},
            "sentence-similarity": {"source_sentence": "a", "sentences": ["b"]}}.get(task, "hello")


@pytest.mark.parametrize("task", ["text-classification", "token-classification", "fill-mask",
                                  "question-answering", "zero-shot-classification",
                                  "feature-extraction", "sentence-similarity"])
def test_bad_input_raises_a_clear_error(pipes, task):
    pipe = pipes[task]
    kw = {"candidate_labels": ["a", "b"]} if task == "zero-shot-classification" else {}
    assert pipe(good_input(task), **kw) is not None
    with pytest.raises(loom.InputError, match="inputs is None"):
        pipe(None, **kw)
    with pytest.raises(loom.InputError, match="empty list"):
        pipe([], **kw)
    with pytest.raises(loom.InputError, match="inputs"):
        pipe(3.5, **kw)
    empty = {"question-answering": {"question": "q?", "context": ""},
             "sentence-similarity": {"source_sentence": "", "sentences": ["b"]}}.get(task, "")
    with pytest.raises(loom.InputError, match="empty string"):
        pipe(empty, **kw)
    # one bad item in a batch is named by its index
    for bad in (None, "  ", 7, b"bytes"):
        with pytest.raises(loom.InputError, match=r"inputs\[2\]"):
            pipe([good_input(task), good_input(task), bad], **kw)
    with pytest.raises(loom.InputError, match=r"inputs\[1\]"):
        list(pipe(iter([good_input(task), ["nested"]]), **kw))


def test_task_specific_bad_input(pipes):
    with pytest.raises(loom.InputError, match=r"inputs\[1\] has no mask token '\[MASK\]'"):
        pipes["fill-mask"](["a [MASK]", "no mask here"])
    with pytest.raises(loom.InputError, match="keys"):
        pipes["question-answering"]({"question": "q?"})
    with pytest.raises(loom.InputError, match="two str or two lists"):
        pipes["question-answering"](question=["a", "b"], context=["c"])
    with pytest.raises(loom.InputError, match="candidate_labels"):
        pipes["zero-shot-classification"]("hello")
    with pytest.raises(loom.InputError, match="hypothesis_template"):
        pipes["zero-shot-classification"]("hello", ["a"], hypothesis_template="no slot")
    with pytest.raises(loom.InputError, match=r"\['sentences'\]\[1\]"):
        pipes["sentence-similarity"]({"source_sentence": "a", "sentences": ["b", ""]})
    with pytest.raises(loom.InputError, match="text_pair"):
        pipes["text-classification"]({"text": "a", "pair": "b"})


# -- batching -------------------------------------------------------------------------------


@pytest.mark.parametrize("task,kw", [("text-classification", {"top_k": None}),
                                     ("token-classification", {"aggregation_strategy": "simple"}),
                                     ("feature-extraction", {}),
                                     ("feature-extraction", {"pooling": "mean"}),
                                     ("zero-shot-classification", {"candidate_labels": ["a", "b c"]})])
def test_batched_equals_unbatched_in_input_order(pipes, task, kw):
    pipe = pipes[task]
    pipe.batch_size = 1
    one_by_one = [pipe(t, **kw) for t in MIXED]
    pipe.batch_size = 4
    try:
        batched = pipe(MIXED, **kw)
    finally:
        pipe.batch_size = 8
    assert_same(batched, one_by_one)


def test_fill_mask_and_qa_batched_equal_unbatched(pipes):
    fill, qa = pipes["fill-mask"], pipes["question-answering"]
    texts = [f"{t} [MASK] {t[:9]}" for t in MIXED]
    questions = [{"question": "Who lives where?", "context": t} for t in MIXED]
    singles = [fill(t) for t in texts], [qa(q, top_k=2) for q in questions]
    fill.batch_size = qa.batch_size = 3
    try:
        assert_same(fill(texts), singles[0])
        assert_same(qa(questions, top_k=2), singles[1])
    finally:
        fill.batch_size = qa.batch_size = 8


def test_batches_are_length_sorted_and_padded_little(pipes, monkeypatch):
    pipe = pipes["text-classification"]
    shapes = []
    real = pipe.collate

    def spy(rows):
        batch = real(rows)
        shapes.append(tuple(batch["input_ids"].shape))
        return batch

    monkeypatch.setattr(pipe, "collate", spy)
    pipe.batch_size = 4
    try:
        pipe(MIXED)
    finally:
        pipe.batch_size = 8
    lengths = sorted((len(pipe.tokenizer(t)["input_ids"]) for t in MIXED), reverse=True)
    assert [s[0] for s in shapes] == [4, 4, 3]
    assert [s[1] for s in shapes] == [lengths[0], lengths[4], lengths[8]]


def test_generators_and_datasets_stream_in_order(pipes):
    import datasets

    pipe = pipes["text-classification"]
    texts = MIXED * 4   # 44 texts: more than one chunk of 8 batches of 2
    pipe.batch_size = 2
    try:
        expected = pipe(texts)
        streamed = pipe(t for t in texts)
        assert not isinstance(streamed, list)
        assert_same(list(streamed), expected)
        ds = datasets.Dataset.from_dict({"text": texts, "label": [0] * len(texts)})
        assert_same(list(pipe(ds["text"])), expected)
        pairs = datasets.Dataset.from_dict({"text": texts, "text_pair": texts[::-1]})
        assert_same(list(pipe(pairs)), pipe([{"text": a, "text_pair": b}
                                             for a, b in zip(texts, texts[::-1])]))
    finally:
        pipe.batch_size = 8


# -- device and dtype ---------------------------------------------------------------------


def test_device_and_dtype(tiny):
    folder = str(tiny("BertForSequenceClassification"))
    full = loom.pipeline("text-classification", model=folder, top_k=None, device=-1)
    assert full.device == torch.device("cpu") and full.model.dtype == torch.float32
    half = loom.pipeline("text-classification", model=folder, top_k=None, dtype="bfloat16", device="cpu")
    assert half.model.dtype == torch.bfloat16
    a, b = full(TEXTS), half(TEXTS)
    for x, y in zip(a, b):
        assert {d["label"] for d in x} == {d["label"] for d in y}
        assert max(abs(p["score"] - q["score"]) for p, q in zip(
            sorted(x, key=lambda d: d["label"]), sorted(y, key=lambda d: d["label"]))) < 0.05
    assert all(isinstance(d["score"], float) for d in b[0])
    model = loom.BertForSequenceClassification.from_pretrained(folder)
    moved = loom.pipeline("text-classification", model=model, tokenizer=folder, dtype=torch.bfloat16)
    assert moved.model.dtype == torch.bfloat16


# -- defaults (real weights, offline) ----------------------------------------------------


@pytest.mark.slow
def test_default_feature_extraction_works_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fe = loom.pipeline("feature-extraction")
    ref = transformers.pipeline("feature-extraction", model=str(minilm_dir()))
    assert_same(fe(TEXTS[:2]), ref(TEXTS[:2]))
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm_dir()), device="cpu").encode(TEXTS)
    ours = np.stack(fe(TEXTS, pooling="mean", normalize=True, return_tensors="np"))
    assert np.abs(ours - st).max() <= 1e-5
    sim = loom.pipeline("sentence-similarity")
    scores = sim("A man is eating food.", sentences=["A man eats bread.", "A plane takes off."])
    assert scores[0] > scores[1] + 0.3


# -- command line -----------------------------------------------------------------------


def test_loom_run(tiny, capsys):
    from loom.cli import main

    folder = str(tiny("BertForSequenceClassification"))
    assert main(["run", "sentiment-analysis", TEXTS[0], TEXTS[1], "--model", folder, "--json",
                 "--batch-size", "2", "--param", "top_k=2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = loom.pipeline("text-classification", model=folder)(TEXTS[:2], top_k=2)
    assert [r["input"] for r in rows] == TEXTS[:2]
    assert_same([r["result"] for r in rows], expected)
    qa = json.dumps({"question": "Where?", "context": TEXTS[0]})
    assert main(["run", "question-answering", qa, "--model", str(tiny("BertForQuestionAnswering"))]) == 0
    out = capsys.readouterr().out
    assert '"answer"' in out and "Where?" in out
    assert main(["run", "fill-mask", "no mask", "--model", str(tiny("BertForMaskedLM"))]) == 2
    assert "has no mask token" in capsys.readouterr().err
    assert main(["run", "summarization", "text"]) == 2
    assert "model=" in capsys.readouterr().err
