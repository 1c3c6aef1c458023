"""`token-classification` (alias `ner`): a label for every token, or entities grouped from them.

Outputs are transformers': with `aggregation_strategy="none"` one dict per token
(`entity`, `score`, `index`, `word`, `start`, `end`); otherwise one per entity
(`entity_group`, `score`, `word`, `start`, `end`). "simple" groups adjacent tokens with the
same tag (B-/I- prefixes respected); "first", "average" and "max" first make every word take
one label (from its first token, the mean of its token scores, or its most confident token).
`ignore_labels` (default ["O"]) are dropped. `stride=N` reads texts longer than the model's
window as overlapping windows (N shared tokens); overlapping entities keep the longest.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import Pipeline, Row, softmax

AGGREGATIONS = ("none", "simple", "first", "average", "max")


class TokenClassificationPipeline(Pipeline):
    task = "token-classification"
    model_task = "token-classification"
    token_outputs = ("logits",)
    defaults = {"aggregation_strategy": "none", "ignore_labels": ("O",), "stride": None}

    def check_params(self, params: dict) -> None:
        strategy = params.get("aggregation_strategy")
        if strategy is not None:
            name = str(getattr(strategy, "value", strategy)).lower()   # transformers' enum too
            if name not in AGGREGATIONS:
                raise InputError(f"aggregation_strategy must be one of {AGGREGATIONS}, found {strategy!r}")
            params["aggregation_strategy"] = name
        labels = params.get("ignore_labels", ())
        if isinstance(labels, str) or not isinstance(labels, (list, tuple, set)):
            raise InputError(f"ignore_labels must be a list of labels, found {labels!r}")

    def preprocess(self, items: list[str], p: dict) -> list[list[Row]]:
        if p["stride"] is not None and p["aggregation_strategy"] == "none":
            raise InputError("token-classification: stride= reads long texts in windows and needs"
                             " an aggregation_strategy other than 'none' to merge them")
        window = "window" if p["stride"] is not None else "truncate"
        groups = self.encode(items, long_inputs=window, stride=p["stride"])
        return [[Row.from_encoding(e) for e in windows] for windows in groups]

    def forward(self, batch, rows, p):
        return {"logits": self.model(**batch).logits}

    def postprocess(self, text: str, rows: list[Row], p: dict) -> list[dict]:
        strategy, ignore = p["aggregation_strategy"], set(p["ignore_labels"])
        entities = []
        for row in rows:
            tokens = self.token_entities(text, row.enc, softmax(row.out["logits"]), strategy)
            grouped = self.aggregate(tokens, strategy)
            entities += [e for e in grouped if e.get("entity_group", e.get("entity")) not in ignore]
        return merge_overlapping(entities) if len(rows) > 1 else entities

    def token_entities(self, text: str, enc, scores: np.ndarray, strategy: str) -> list[dict]:
        """Every non-special token: its word piece, scores, character span and whether it
        continues the word before it."""
        prefix = getattr(self.tokenizer.backend_tokenizer.model, "continuing_subword_prefix", None)
        if not prefix and strategy in ("first", "average", "max"):
            self.log_once("no-subword-prefix", "token-classification: this tokenizer marks no"
                          " subwords; words are guessed from spaces in the text")
        unk, out = self.tokenizer.unk_token_id, []
        for idx, (tid, special, (start, end)) in enumerate(
                zip(enc.ids, enc.special_tokens_mask, enc.offsets)):
            if special:
                continue
            word, piece = self.tokenizer.convert_ids_to_tokens(tid), text[start:end]
            if prefix:   # "##ing" is longer than the "ing" it covers
                is_subword = len(word) != len(piece)
            else:
                is_subword = start > 0 and " " not in text[start - 1:start + 1]
            if tid == unk:
                word, is_subword = piece, False
            out.append({"word": word, "scores": scores[idx], "start": start, "end": end,
                        "index": idx, "is_subword": is_subword})
        return out

    def aggregate(self, tokens: list[dict], strategy: str) -> list[dict]:
        labels = self.model.config.id2label
        if strategy in ("none", "simple"):
            entities = [{"entity": labels[int(t["scores"].argmax())], "score": float(t["scores"].max()),
                         "index": t["index"], "word": t["word"], "start": t["start"], "end": t["end"]}
                        for t in tokens]
        else:
            entities = [self.aggregate_word(w, strategy) for w in split_words(tokens)]
        return entities if strategy == "none" else self.group_entities(entities)

    def aggregate_word(self, tokens: list[dict], strategy: str) -> dict:
        """One label for a whole word, from its tokens."""
        if strategy == "first":
            scores = tokens[0]["scores"]
        elif strategy == "max":
            scores = max(tokens, key=lambda t: t["scores"].max())["scores"]
        else:   # average
            scores = np.nanmean(np.stack([t["scores"] for t in tokens]), axis=0)
        best = int(scores.argmax())
        return {"entity": self.model.config.id2label[best], "score": float(scores[best]),
                "word": self.tokenizer.convert_tokens_to_string([t["word"] for t in tokens]),
                "start": tokens[0]["start"], "end": tokens[-1]["end"]}

    def group_entities(self, entities: list[dict]) -> list[dict]:
        """Adjacent entities with the same tag form one group; a B- tag starts a new one."""
        groups: list[list[dict]] = []
        for e in entities:
            bi, tag = split_tag(e["entity"])
            if groups and bi != "B" and tag == split_tag(groups[-1][-1]["entity"])[1]:
                groups[-1].append(e)
            else:
                groups.append([e])
        return [{"entity_group": g[0]["entity"].split("-", 1)[-1],
                 "score": float(np.nanmean([e["score"] for e in g])),
                 "word": self.tokenizer.convert_tokens_to_string([e["word"] for e in g]),
                 "start": g[0]["start"], "end": g[-1]["end"]} for g in groups]


def split_words(tokens: list[dict]) -> list[list[dict]]:
    words: list[list[dict]] = []
    for t in tokens:
        if words and t["is_subword"]:
            words[-1].append(t)
        else:
            words.append([t])
    return words


def split_tag(label: str) -> tuple[str, str]:
    """("B", "PER") for "B-PER", ("I", "PER") for "I-PER", ("I", label) otherwise."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def merge_overlapping(entities: list[dict]) -> list[dict]:
    """Entities found in overlapping windows: of those that overlap, keep the longest (then
    the most confident)."""
    merged: list[dict] = []
    for e in sorted(entities, key=lambda e: e["start"]):
        last = merged[-1] if merged else None
        if last is not None and last["start"] <= e["start"] < last["end"]:
            longer = (e["end"] - e["start"], e["score"]) > (last["end"] - last["start"], last["score"])
            if longer:
                merged[-1] = e
        else:
            merged.append(e)
    return merged


__all__ = ["TokenClassificationPipeline", "AGGREGATIONS"]
