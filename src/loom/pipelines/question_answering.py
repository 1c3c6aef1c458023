"""`question-answering`: the span of a context that answers a question (extractive QA).

Inputs: `{"question": q, "context": c}`, a list of them, or `qa(question=q, context=c)`.
Output per input (transformers 4.x's format; 5.x removed the task): `{"score", "start",
"end", "answer"}`, or a list of the `top_k` best. A span's score is p(start) * p(end) over
the context tokens, spans at most `max_answer_len` tokens long. Contexts longer than
`max_seq_len` are read in windows sharing `doc_stride` tokens; the best spans of all windows
compete. `handle_impossible_answer=True` adds the empty answer, scored by the [CLS] token.
With `align_to_words` a span is widened to whole words.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import Pipeline, Row, check_text, check_top_k, softmax

MASKED = -10000.0   # logit given to tokens that cannot be part of an answer


class QuestionAnsweringPipeline(Pipeline):
    task = "question-answering"
    model_task = "question-answering"
    input_kind = "a dict {'question': str, 'context': str}"
    token_outputs = ("start_logits", "end_logits")
    defaults = {"top_k": 1, "doc_stride": None, "max_answer_len": 15, "max_seq_len": None,
                "handle_impossible_answer": False, "align_to_words": True}

    def __call__(self, inputs=None, /, *, question=None, context=None, **kwargs):
        if question is not None or context is not None:
            if inputs is not None:
                raise InputError("question-answering: pass inputs or question=/context=, not both")
            inputs = _pairs(question, context)
        return super().__call__(inputs, **kwargs)

    def check_params(self, params: dict) -> None:
        if "top_k" in params:
            check_top_k(params["top_k"])
        for name in ("max_answer_len", "max_seq_len", "doc_stride"):
            value = params.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InputError(f"{name} must be a positive int, found {value!r}")

    def check_input(self, item, where: str) -> dict:
        if not isinstance(item, dict) or set(item) != {"question", "context"}:
            found = f"a dict with keys {sorted(item)}" if isinstance(item, dict) else type(item).__name__
            raise InputError(f"question-answering: {where} must be {self.input_kind}, found {found}")
        check_text(item["question"], f"{where}['question']", self.task)
        check_text(item["context"], f"{where}['context']", self.task)
        return item

    @property
    def question_first(self) -> bool:
        return self.tokenizer.padding_side == "right"

    def preprocess(self, items: list[dict], p: dict) -> list[list[Row]]:
        max_len = p["max_seq_len"] or min(self.max_length, 384)
        stride = p["doc_stride"] if p["doc_stride"] is not None else min(max_len // 2, 128)
        questions = [x["question"] for x in items]
        contexts = [x["context"] for x in items]
        first, second = (questions, contexts) if self.question_first else (contexts, questions)
        groups = self.encode(first, second, long_inputs="window", max_length=max_len, stride=stride,
                             truncation="only_second" if self.question_first else "only_first")
        return [[Row.from_encoding(e) for e in windows] for windows in groups]

    def forward(self, batch, rows, p):
        out = self.model(**batch)
        return {"start_logits": out.start_logits, "end_logits": out.end_logits}

    def postprocess(self, item: dict, rows: list[Row], p: dict):
        answers, null_score = [], 1.0
        for row in rows:
            start, end, context_tokens = self.probabilities(row)
            null_score = min(null_score, float(start[0] * end[0]))
            start[0] = end[0] = 0.0   # position 0 ([CLS]) is the empty answer, not a span
            for s, e, score in best_spans(start, end, context_tokens, p["top_k"], p["max_answer_len"]):
                a, b = self.char_span(row.enc, s, e, p["align_to_words"])
                answers.append({"score": score, "start": a, "end": b, "answer": item["context"][a:b]})
        if p["handle_impossible_answer"]:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda x: -x["score"])[:p["top_k"]]
        return answers[0] if p["top_k"] == 1 else answers

    def probabilities(self, row: Row):
        """p(start) and p(end) over the context tokens and [CLS]; which tokens are context."""
        context_seq = 1 if self.question_first else 0
        context = np.array([s == context_seq for s in row.enc.sequence_ids])
        allowed = context | (np.array(row.ids) == self.tokenizer.cls_token_id)
        start = softmax(np.where(allowed, row.out["start_logits"], MASKED))
        end = softmax(np.where(allowed, row.out["end_logits"], MASKED))
        return start, end, context

    def char_span(self, enc, s: int, e: int, align_to_words: bool) -> tuple[int, int]:
        """Characters of the context that tokens s..e cover (whole words if asked)."""
        seq = 1 if self.question_first else 0
        if align_to_words:
            first, last = enc.token_to_word(s), enc.token_to_word(e)
            if first is not None and last is not None:
                a, b = enc.word_to_chars(first, seq), enc.word_to_chars(last, seq)
                if a is not None and b is not None:
                    return a[0], b[1]
        return enc.offsets[s][0], enc.offsets[e][1]


def best_spans(start: np.ndarray, end: np.ndarray, allowed: np.ndarray, top_k: int,
               max_answer_len: int) -> list[tuple[int, int, float]]:
    """The top_k spans (s, e, p(s) * p(e)) with s <= e < s + max_answer_len, both allowed."""
    scores = np.outer(start, end)   # (T, T)
    valid = np.triu(np.tril(np.ones_like(scores, dtype=bool), max_answer_len - 1))
    valid &= allowed[:, None] & allowed[None, :]
    flat = np.where(valid, scores, -1.0).ravel()
    k = min(top_k, int(valid.sum()))
    best = np.argsort(-flat, kind="stable")[:k]
    s, e = np.unravel_index(best, scores.shape)
    return [(int(a), int(b), float(scores[a, b])) for a, b in zip(s, e)]


def _pairs(question, context):
    if isinstance(question, str) or isinstance(context, str):
        return {"question": question, "context": context}
    if not isinstance(question, (list, tuple)) or not isinstance(context, (list, tuple)) or (
            len(question) != len(context)):
        raise InputError("question-answering: question= and context= must be two str or two lists"
                         f" of the same length, found {type(question).__name__} and"
                         f" {type(context).__name__}")
    return [{"question": q, "context": c} for q, c in zip(question, context)]


__all__ = ["QuestionAnsweringPipeline", "best_spans"]
