"""Logits processors: each maps (input_ids (B, L), scores (B, V) float32) to new scores.

`build_processors` assembles them from a `GenerationConfig` in the reference's order
(penalties and length rules first, then, when sampling, temperature, top-k, top-p, min-p), so
that greedy and beam search pick the same tokens as `transformers` and sampling draws from
the same distribution. Removed tokens get -inf.
"""

from __future__ import annotations

import torch

from .config import GenerationConfig


class LogitsProcessor:
    """Base class: `__call__(input_ids, scores) -> scores`."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class LogitsProcessorList(list):
    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        for processor in self:
            scores = processor(input_ids, scores)
        return scores


class RepetitionPenalty(LogitsProcessor):
    """CTRL's penalty (arXiv:1909.05858) on every token already in the sequence: positive
    scores divided by `penalty`, negative ones multiplied. `ignore` (B,) leading tokens per row
    (left padding) are not counted."""

    def __init__(self, penalty: float, ignore: torch.Tensor | None = None):
        self.penalty = penalty
        self.ignore = ignore

    def __call__(self, input_ids, scores):
        V = scores.shape[-1]
        ids = input_ids.clamp(max=V)  # ids past the output vocabulary go to a dropped column
        if self.ignore is not None:
            positions = torch.arange(ids.shape[1], device=ids.device)
            ids = ids.masked_fill(positions[None, :] < self.ignore.to(ids.device)[:, None], V)
        padded = torch.nn.functional.pad(scores, (0, 1))
        seen = padded.gather(1, ids)
        seen = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
        return padded.scatter(1, ids, seen)[:, :V]


class NoRepeatNGram(LogitsProcessor):
    """Forbid any token that would complete an n-gram already present in the sequence."""

    def __init__(self, n: int):
        self.n = n

    def __call__(self, input_ids, scores):
        L, n = input_ids.shape[1], self.n
        if L < n:
            return scores
        V = scores.shape[-1]
        prefix = input_ids[:, L + 1 - n:]  # (B, n-1): the tokens a new n-gram would start with
        windows = input_ids.unfold(1, n, 1)  # (B, L-n+1, n): every n-gram so far
        hits = (windows[..., :-1] == prefix[:, None, :]).all(-1)
        banned = torch.zeros(scores.shape[0], V + 1, dtype=torch.bool, device=scores.device)
        banned.scatter_(1, torch.where(hits, windows[..., -1].clamp(max=V), V), True)
        return scores.masked_fill(banned[:, :V], -float("inf"))


class MinLength(LogitsProcessor):
    """No end-of-sequence token before the sequence (prompt included) has `min_length` tokens."""

    def __init__(self, min_length: int, eos_ids: list[int]):
        self.min_length = min_length
        self.eos_ids = eos_ids

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] >= self.min_length:
            return scores
        scores = scores.clone()
        scores[:, self.eos_ids] = -float("inf")
        return scores


class SuppressTokens(LogitsProcessor):
    """Never generate `tokens` (Whisper's non-speech symbols, for instance)."""

    def __init__(self, tokens: list[int]):
        self.tokens = list(tokens)

    def __call__(self, input_ids, scores):
        keep = [t for t in self.tokens if t < scores.shape[-1]]
        scores = scores.clone()
        scores[:, keep] = -float("inf")
        return scores


class SuppressTokensAtBegin(SuppressTokens):
    """`tokens` may not be the first generated token: suppressed while the sequence has
    `begin_index` tokens."""

    def __init__(self, tokens: list[int], begin_index: int):
        super().__init__(tokens)
        self.begin_index = begin_index

    def __call__(self, input_ids, scores):
        return super().__call__(input_ids, scores) if input_ids.shape[1] == self.begin_index else scores


class ForceToken(LogitsProcessor):
    """Only `token_ids` may follow when the sequence has `length` tokens (forced BOS at 1,
    forced EOS at max_length - 1)."""

    def __init__(self, token_ids: int | list[int], length: int):
        self.token_ids = [token_ids] if isinstance(token_ids, int) else list(token_ids)
        self.length = length

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] != self.length:
            return scores
        forced = torch.full_like(scores, -float("inf"))
        forced[:, self.token_ids] = 0
        return forced


class Temperature(LogitsProcessor):
    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, input_ids, scores):
        return scores / self.temperature


class TopK(LogitsProcessor):
    def __init__(self, k: int, min_tokens_to_keep: int = 1):
        self.k = max(k, min_tokens_to_keep)

    def __call__(self, input_ids, scores):
        k = min(self.k, scores.shape[-1])
        kth = torch.topk(scores, k)[0][..., -1:]
        return scores.masked_fill(scores < kth, -float("inf"))


class TopP(LogitsProcessor):
    """Nucleus sampling (arXiv:1904.09751): keep the smallest set of top tokens whose
    probability reaches `p`."""

    def __init__(self, p: float, min_tokens_to_keep: int = 1):
        self.p = p
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids, scores):
        ascending, order = torch.sort(scores, descending=False)
        cumulative = ascending.softmax(-1).cumsum(-1)
        drop = cumulative <= (1 - self.p)  # the low tail holding at most 1 - p of the mass
        drop[..., -self.min_tokens_to_keep:] = False
        return scores.masked_fill(drop.scatter(1, order, drop), -float("inf"))


class MinP(LogitsProcessor):
    """Keep tokens whose probability is at least `p` times the top token's (arXiv:2407.01082)."""

    def __init__(self, p: float, min_tokens_to_keep: int = 1):
        self.p = p
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids, scores):
        probs = scores.softmax(-1)
        drop = probs < self.p * probs.amax(-1, keepdim=True)
        k = min(self.min_tokens_to_keep, probs.shape[-1])
        drop.scatter_(-1, torch.topk(probs, k, dim=-1).indices, False)
        return scores.masked_fill(drop, -float("inf"))


def build_processors(config: GenerationConfig, prompt_length: int, padding: torch.Tensor | None = None,
                     extra: list | None = None, max_length: int | None = None) -> LogitsProcessorList:
    """The processors `config` asks for, in the reference's order, then the caller's `extra`.

    `padding` (B,) is each row's number of left-padding tokens, which the repetition penalty
    does not count; `max_length` places a forced end-of-sequence token.
    """
    out = LogitsProcessorList()
    eos = config.eos_ids
    if config.repetition_penalty != 1.0:
        out.append(RepetitionPenalty(config.repetition_penalty, padding))
    if config.no_repeat_ngram_size > 0:
        out.append(NoRepeatNGram(config.no_repeat_ngram_size))
    if eos and config.min_length > 0:
        out.append(MinLength(config.min_length, eos))
    if eos and config.min_new_tokens:
        out.append(MinLength(prompt_length + config.min_new_tokens, eos))
    if config.forced_bos_token_id is not None:
        out.append(ForceToken(config.forced_bos_token_id, 1))
    if config.forced_eos_token_id is not None and max_length is not None:
        out.append(ForceToken(config.forced_eos_token_id, max_length - 1))
    if config.suppress_tokens is not None:
        out.append(SuppressTokens(config.suppress_tokens))
    if config.begin_suppress_tokens is not None:
        # As the reference: a one-token prompt followed by a forced BOS starts one token later.
        begin = prompt_length if prompt_length > 1 or config.forced_bos_token_id is None else prompt_length + 1
        out.append(SuppressTokensAtBegin(config.begin_suppress_tokens, begin))
    out.extend(extra or [])
    if config.do_sample:
        # Beam sampling keeps enough candidates that an end-of-sequence pick leaves a live beam.
        keep = (len(eos) + 1 if eos else 2) if config.num_beams > 1 else 1
        if config.temperature != 1.0:
            out.append(Temperature(config.temperature))
        if config.top_k:
            out.append(TopK(config.top_k, keep))
        if config.top_p < 1.0:
            out.append(TopP(config.top_p, keep))
        if config.min_p is not None:
            out.append(MinP(config.min_p, keep))
    return out


__all__ = [
    "LogitsProcessor", "LogitsProcessorList", "RepetitionPenalty", "NoRepeatNGram", "MinLength",
    "Temperature", "TopK", "TopP", "MinP", "SuppressTokens", "SuppressTokensAtBegin", "ForceToken",
    "build_processors",
]
