"""Stopping criteria: each maps input_ids (B, L) to a (B,) bool tensor, True where a row is
done. `build_criteria` assembles them from a `GenerationConfig`."""

from __future__ import annotations

import torch

from ..errors import InputError
from .config import GenerationConfig


class StoppingCriteria:
    """Base class: `__call__(input_ids) -> (B,) bool`."""

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class StoppingCriteriaList(list):
    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for criteria in self:
            done = done | criteria(input_ids)
        return done


class MaxLength(StoppingCriteria):
    """Done once the sequence (prompt included) has `max_length` tokens."""

    def __init__(self, max_length: int):
        self.max_length = max_length

    def __call__(self, input_ids):
        return torch.full((input_ids.shape[0],), input_ids.shape[1] >= self.max_length,
                          dtype=torch.bool, device=input_ids.device)


class EosToken(StoppingCriteria):
    """Done when the last token is one of `eos_ids`."""

    def __init__(self, eos_ids: list[int]):
        self.eos_ids = torch.tensor(eos_ids, dtype=torch.long)

    def __call__(self, input_ids):
        return torch.isin(input_ids[:, -1], self.eos_ids.to(input_ids.device))


class StopStrings(StoppingCriteria):
    """Done when the text ends with a stop string that the last token helped complete: the
    string must overlap the last token (as in the reference), so a stop string seen earlier
    (in the prompt, say) never stops the generation by itself."""

    def __init__(self, stop_strings: list[str], tokenizer):
        if tokenizer is None:
            raise InputError("stop_strings need the model's tokenizer: pass generate(..., tokenizer=tok)")
        self.stop_strings = list(stop_strings)
        self.tokenizer = tokenizer
        # Enough tokens to hold the longest stop string even if each decodes to one character.
        self.window = max(len(s) for s in self.stop_strings) + 2

    def __call__(self, input_ids):
        done = []
        for row in input_ids.tolist():
            tail = row[-self.window:]
            before = self.tokenizer.decode(tail[:-1])
            text = self.tokenizer.decode(tail)
            done.append(any(text.find(s, max(0, len(before) - len(s) + 1)) != -1 for s in self.stop_strings))
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def build_criteria(config: GenerationConfig, max_length: int, tokenizer=None,
                   extra: list | None = None) -> StoppingCriteriaList:
    out = StoppingCriteriaList([MaxLength(max_length)])
    if config.stop_string_list:
        out.append(StopStrings(config.stop_string_list, tokenizer))
    if config.eos_ids:
        out.append(EosToken(config.eos_ids))
    out.extend(extra or [])
    return out


__all__ = ["StoppingCriteria", "StoppingCriteriaList", "MaxLength", "EosToken", "StopStrings", "build_criteria"]
