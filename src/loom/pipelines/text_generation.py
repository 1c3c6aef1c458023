"""`text-generation`: continue a prompt, or answer a chat, with a causal language model.

Inputs: a str prompt, a chat (a list of `{"role", "content"}` messages, formatted with the
tokenizer's chat template), or a list of either. Output per input, as in transformers: a list
of `num_return_sequences` dicts `{"generated_text": ...}`: the prompt plus its continuation
(`return_full_text=False`: the continuation only); for a chat, the messages with the
assistant's reply appended (or, when the chat ends with an assistant message, that message
continued). `return_tensors=True` gives `{"generated_token_ids": [...]}` instead.

Every `generate()` argument is a call parameter (`max_new_tokens`, `do_sample`, `num_beams`,
`temperature`, `seed`, `streamer`, ...). As in transformers' pipeline, what neither the call
nor the model's generation config sets defaults to max_new_tokens=256, do_sample=True,
temperature=0.7. Prompts are batched left-padded, which changes no row's result.
`pipe.stream(prompt)` yields the new text piece by piece while it is generated.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from ..errors import InputError
from .base import GeneratingPipeline, Row, check_text, with_generation_defaults

PIPELINE_GENERATION_DEFAULTS = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}


class TextGenerationPipeline(GeneratingPipeline):
    generate_extras = GeneratingPipeline.generate_extras | {"streamer"}
    task = "text-generation"
    model_task = "causal-lm"
    input_kind = "a str prompt or a chat (a list of {'role': ..., 'content': ...} messages)"
    defaults = {"return_full_text": True, "return_tensors": False, "prefix": "",
                "stop_sequence": None, "continue_final_message": None, "skip_special_tokens": True,
                "clean_up_tokenization_spaces": None, "add_special_tokens": True}

    def is_single(self, inputs) -> bool:
        return isinstance(inputs, str) or _is_chat(inputs) or super().is_single(inputs)

    def check_input(self, item, where: str):
        if _is_chat(item):
            for i, m in enumerate(item):
                if not isinstance(m, dict) or not isinstance(m.get("role"), str) or "content" not in m:
                    raise InputError(f"{self.task}: {where}[{i}] must be a message {{'role': str,"
                                     f" 'content': ...}}, found {m!r:.60}")
            return list(item)
        return check_text(item, where, self.task)

    def preprocess(self, items: list, p: dict) -> list[list[Row]]:
        rows = []
        for item in items:
            if isinstance(item, str):
                ids = self.tokenizer(p["prefix"] + item, add_special_tokens=p["add_special_tokens"])
            else:
                cont = _continues(item, p)
                ids = self.tokenizer.apply_chat_template(item, add_generation_prompt=not cont,
                                                         continue_final_message=cont)
            rows.append([Row(ids=ids["input_ids"])])
        return rows

    def collate(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        """Left padding whatever the tokenizer says: new tokens follow every prompt."""
        B, T = len(rows), max(len(r.ids) for r in rows)
        ids = np.full((B, T), self._pad_id(), dtype=np.int64)
        mask = np.zeros((B, T), dtype=np.int64)
        for b, r in enumerate(rows):
            ids[b, T - len(r.ids):], mask[b, T - len(r.ids):] = r.ids, 1
        return {"input_ids": torch.from_numpy(ids).to(self.device),
                "attention_mask": torch.from_numpy(mask).to(self.device)}

    def forward(self, batch, rows, p):
        kwargs = self.generate_kwargs(p)
        if kwargs.get("streamer") is not None and len(rows) > 1:
            raise InputError("text-generation: a streamer follows one sequence; pass one prompt"
                             " (or batch_size=1)")
        sequences = self.model.generate(**batch, **kwargs)
        new = sequences[:, batch["input_ids"].shape[1]:].cpu()
        n = new.shape[0] // len(rows)   # num_return_sequences
        return [{"new_ids": [self._trim(x) for x in new[b * n:(b + 1) * n].tolist()]}
                for b in range(len(rows))]

    def postprocess(self, item, rows: list[Row], p: dict) -> list[dict]:
        row = rows[0]
        if p["return_tensors"]:
            return [{"generated_token_ids": list(row.ids) + ids} for ids in row.out["new_ids"]]
        out = []
        for ids in row.out["new_ids"]:
            text = self.tokenizer.decode(ids, skip_special_tokens=p["skip_special_tokens"],
                                         clean_up_tokenization_spaces=p["clean_up_tokenization_spaces"])
            out.append({"generated_text": self._full(item, text, p) if p["return_full_text"] else text})
        return out

    def _full(self, item, text: str, p: dict):
        if isinstance(item, str):
            return item + text
        if _continues(item, p):
            last = item[-1]
            return item[:-1] + [{**last, "content": last["content"] + text}]
        return item + [{"role": "assistant", "content": text}]

    # -- generation arguments ----------------------------------------------------------------

    def generate_kwargs(self, p: dict) -> dict:
        """The call's generate() arguments, plus the pipeline's defaults for what neither the
        call nor the model's generation config sets."""
        kwargs = {k: v for k, v in p.items() if k not in self.defaults}
        if p["stop_sequence"] is not None:
            kwargs["stop_strings"] = p["stop_sequence"]
        kwargs = with_generation_defaults(self.model, kwargs, PIPELINE_GENERATION_DEFAULTS, self.tokenizer)
        if kwargs.get("stop_strings") is not None:
            kwargs["tokenizer"] = self.tokenizer
        return kwargs

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_ids or (
            [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else [])
        return set(eos)

    def _pad_id(self) -> int:
        for value in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
            if value is not None:
                return value
        return 0

    def _trim(self, ids: list[int]) -> list[int]:
        """New tokens up to and including the first end-of-sequence token (the rest is the
        padding of a row that finished before others of its batch)."""
        eos = self._eos_ids()
        for i, t in enumerate(ids):
            if t in eos:
                return ids[:i + 1]
        return ids

    # -- streaming ----------------------------------------------------------------------------

    def stream(self, prompt, **kwargs):
        """Yield the new text of one prompt (or chat) piece by piece while it is generated."""
        from ..generation.streamers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, timeout=None,
                                        skip_special_tokens=True)
        failure: list[BaseException] = []

        def work():
            try:
                self(prompt, streamer=streamer, **kwargs)
            except BaseException as e:   # handed to the caller's thread below
                failure.append(e)
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if failure:
            raise failure[0]


def _is_chat(value) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and isinstance(value[0], dict)


def _continues(chat: list[dict], p: dict) -> bool:
    flag = p["continue_final_message"]
    return chat[-1]["role"] == "assistant" if flag is None else bool(flag)


__all__ = ["TextGenerationPipeline"]
