"""`fill-mask`: the likeliest tokens for each mask token of a text.

Outputs are transformers': per text the `top_k` candidates as dicts `score`, `token`,
`token_str`, `sequence` (the text with the candidate in place), best first; a text with
several masks gives one such list per mask. `targets` restricts the candidates to given
words (a word outside the vocabulary stands for its first token, logged).
"""

from __future__ import annotations

import torch

from ..errors import InputError
from .base import Pipeline, Row, check_text, check_top_k


class FillMaskPipeline(Pipeline):
    task = "fill-mask"
    model_task = "masked-lm"
    defaults = {"top_k": 5, "targets": None}

    def __init__(self, model, tokenizer=None, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        if tokenizer.mask_token_id is None:
            raise InputError("fill-mask: the tokenizer has no mask_token; this task needs one")
        self._targets: dict[tuple, torch.Tensor] = {}

    def check_params(self, params: dict) -> None:
        if "top_k" in params:
            check_top_k(params["top_k"])
        targets = params.get("targets")
        if targets is not None:
            targets = [targets] if isinstance(targets, str) else targets
            if not isinstance(targets, (list, tuple)) or not targets or not all(
                    isinstance(t, str) and t for t in targets):
                raise InputError(f"targets must be a str or a non-empty list of str, found {targets!r}")
            params["targets"] = tuple(targets)

    def check_input(self, item, where: str) -> str:
        check_text(item, where, self.task)
        if self.tokenizer.mask_token not in item:
            raise InputError(f"fill-mask: {where} has no mask token {self.tokenizer.mask_token!r}:"
                             f" {item!r:.80}")
        return item

    def preprocess(self, items: list[str], p: dict) -> list[list[Row]]:
        return [[Row.from_encoding(windows[0])] for windows in self.encode(items)]

    def forward(self, batch, rows, p):
        logits = self.model(**batch).logits   # (B, T, V)
        is_mask = batch["input_ids"] == self.tokenizer.mask_token_id
        targets = self.target_ids(p["targets"])
        out = []
        for b in range(len(rows)):
            probs = logits[b][is_mask[b]].float().softmax(-1)   # (M, V)
            if targets is not None:
                probs = probs[:, targets]
            scores, index = probs.topk(min(p["top_k"], probs.shape[-1]))
            ids = index if targets is None else targets[index]
            out.append({"scores": scores.cpu().numpy(), "ids": ids.cpu().numpy()})
        return out

    def postprocess(self, text: str, rows: list[Row], p: dict):
        row = rows[0]
        ids = list(row.ids)
        masks = [i for i, t in enumerate(ids) if t == self.tokenizer.mask_token_id]
        if not masks:
            raise InputError(f"fill-mask: the mask token of {text!r:.80} was cut off with the"
                             " end of a text longer than the model takes")
        single = len(masks) == 1
        results = []
        for position, scores, cands in zip(masks, row.out["scores"], row.out["ids"]):
            found = []
            for score, token in zip(scores.tolist(), cands.tolist()):
                filled = ids[:position] + [token] + ids[position + 1:]
                found.append({"score": score, "token": token,
                              "token_str": self.tokenizer.decode([token]),
                              "sequence": self.tokenizer.decode(filled, skip_special_tokens=single)})
            results.append(found)
        return results[0] if single else results

    def target_ids(self, targets: tuple | None) -> torch.Tensor | None:
        if targets is None:
            return None
        if targets not in self._targets:
            vocab, ids = self.tokenizer.get_vocab(), []
            for word in targets:
                if word in vocab:
                    ids.append(vocab[word])
                    continue
                pieces = self.tokenizer(word, add_special_tokens=False)["input_ids"]
                if not pieces:
                    self.log_once(f"target {word}", "fill-mask: target %r has no tokens; ignored", word)
                    continue
                self.log_once(f"target {word}", "fill-mask: target %r is not in the vocabulary;"
                              " using its first token %r", word,
                              self.tokenizer.convert_ids_to_tokens(pieces[0]))
                ids.append(pieces[0])
            if not ids:
                raise InputError(f"fill-mask: none of the targets {list(targets)} has a token")
            self._targets[targets] = torch.tensor(sorted(set(ids)), device=self.device)
        return self._targets[targets]


__all__ = ["FillMaskPipeline"]
