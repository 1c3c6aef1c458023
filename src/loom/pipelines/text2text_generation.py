"""`text2text-generation`, `summarization` and `translation`: text in, generated text out,
with an encoder-decoder model (T5).

Each input (a str, or a list of them) gives, as transformers 4.x did, a list of
`num_return_sequences` dicts `{"generated_text"}` (`{"summary_text"}`, `{"translation_text"}`);
a list of inputs with one sequence each gives one dict per input. `return_tensors=True` gives
`{"generated_token_ids"}` instead.

The task's settings in the checkpoint apply as the reference applies them: the config's
`task_specific_params[task]` (T5: `"summarization"`, `"translation_en_to_de"`...) set the
task prefix (`"summarize: "`) and generation defaults (`max_length`, `num_beams`...), and
`config.prefix` is prepended otherwise. The encoder reads the whole input: T5's relative
positions take any length, so nothing is cut unless `truncation=True` is asked for (then to
the tokenizer's `model_max_length`, logged once).
"""

from __future__ import annotations

import re

from ..errors import InputError
from ..generation.config import GenerationConfig
from .base import GeneratingPipeline, Row



class Text2TextGenerationPipeline(GeneratingPipeline):
    task = "text2text-generation"
    model_task = "seq2seq-lm"
    return_name = "generated"
    defaults = {"return_tensors": False, "return_text": True, "clean_up_tokenization_spaces": None,
                "truncation": False, "prefix": None}

    def __init__(self, model, tokenizer=None, *, task: str | None = None, **kwargs):
        self.task_name = task or self.task
        super().__init__(model, tokenizer, **kwargs)
        self.task_params = _task_params(model.config, self.task_name)

    def __call__(self, inputs=None, /, **kwargs):
        if inputs is None and "inputs" in kwargs:
            inputs = kwargs.pop("inputs")
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, (list, tuple)) and all(len(r) == 1 for r in result):
            return [r[0] for r in result]  # as the reference: one sequence each -> flat list
        return result

    def check_params(self, params: dict) -> None:
        super().check_params(params)
        if not isinstance(params.get("truncation", False), bool):
            raise InputError(f"{self.task}: truncation must be True or False, found {params['truncation']!r}")

    def preprocess(self, items: list, p: dict) -> list[list[Row]]:
        prefix = p["prefix"]
        if prefix is None:
            prefix = self.task_params.get("prefix", getattr(self.model.config, "prefix", None)) or ""
        limit = self.tokenizer.model_max_length
        enc = self.tokenizer([prefix + x for x in items], truncation=p["truncation"],
                             max_length=limit if p["truncation"] else None)
        if p["truncation"] and any(e.overflowing for e in enc.encodings):
            self.log_once("truncated", "%s: an input longer than %d tokens was cut (truncation=True)",
                          self.task, limit)
        return [[Row(ids=ids)] for ids in enc["input_ids"]]

    def forward(self, batch, rows, p):
        kwargs = self.generate_kwargs(p)
        sequences = self.model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs)
        n = sequences.shape[0] // len(rows)  # num_return_sequences
        return [{"ids": sequences[b * n:(b + 1) * n].tolist()} for b in range(len(rows))]

    def postprocess(self, item, rows: list[Row], p: dict) -> list[dict]:
        out = []
        for ids in rows[0].out["ids"]:
            if p["return_tensors"]:
                out.append({f"{self.return_name}_token_ids": ids})
            else:
                text = self.tokenizer.decode(ids, skip_special_tokens=True,
                                             clean_up_tokenization_spaces=p["clean_up_tokenization_spaces"])
                out.append({f"{self.return_name}_text": text})
        return out

    def generate_kwargs(self, p: dict) -> dict:
        """The call's generate() arguments over the task's defaults from the config."""
        names = GenerationConfig.field_names()
        defaults = {k: v for k, v in self.task_params.items() if k in names}
        return {**defaults, **{k: v for k, v in p.items() if k not in self.defaults}}


class SummarizationPipeline(Text2TextGenerationPipeline):
    task = "summarization"
    return_name = "summary"


class TranslationPipeline(Text2TextGenerationPipeline):
    """`translation_xx_to_yy` names the languages (T5 takes its prefix from the task); plain
    `translation` takes `src_lang` / `tgt_lang`, or the config's only translation task."""

    task = "translation"
    return_name = "translation"
    defaults = {**Text2TextGenerationPipeline.defaults, "src_lang": None, "tgt_lang": None}

    def __init__(self, model, tokenizer=None, *, task: str | None = None, **kwargs):
        super().__init__(model, tokenizer, task=task or self.task, **kwargs)

    def preprocess(self, items: list, p: dict) -> list[list[Row]]:
        if p["src_lang"] or p["tgt_lang"]:
            name = f"translation_{p['src_lang']}_to_{p['tgt_lang']}"
            params = _task_params(self.model.config, name)
            if not params and not (p["src_lang"] and p["tgt_lang"]):
                raise InputError(f"{self.task}: give both src_lang and tgt_lang, found "
                                 f"src_lang={p['src_lang']!r}, tgt_lang={p['tgt_lang']!r}")
            if p["prefix"] is None:
                p = {**p, "prefix": params.get("prefix", "")}
        return super().preprocess(items, p)


def _task_params(config, task: str) -> dict:
    """The config's `task_specific_params` entry for `task` ({} when it has none); plain
    "translation" takes the only translation entry when there is exactly one."""
    table = getattr(config, "task_specific_params", None) or {}
    if task in table:
        return dict(table[task])
    if task == "translation":
        found = [k for k in table if re.fullmatch(r"translation_.+_to_.+", k)]
        if len(found) == 1:
            return dict(table[found[0]])
    return {}


__all__ = ["Text2TextGenerationPipeline", "SummarizationPipeline", "TranslationPipeline"]
