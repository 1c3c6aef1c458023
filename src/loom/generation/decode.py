"""Decoding strategies, one function each: `sample` (greedy when not sampling) and
`beam_search`. They drive a stepper (see `loom.generation.mixin`): `prefill(ids, mask)` and
`step(sequences)` return the float32 logits of each row's last position, `reorder(idx)`
reorders the rows of its cache.

Both follow the reference's algorithms choice for choice (same processors, the same
candidate and tie-breaking tensor operations), so that greedy and beam search outputs are
identical token for token to `transformers.generate` on the same model and prompt.
Shapes: B batch, N beams, K candidates per batch item, L sequence length, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..modeling.outputs import ModelOutput

NEG = -1.0e9  # score of an impossible beam, as the reference uses


@dataclass
class GenerateOutput(ModelOutput):
    """What `generate(..., return_dict_in_generate=True)` returns."""

    sequences: torch.Tensor | None = None  # (B * num_return_sequences, L), prompt included
    scores: tuple[torch.Tensor, ...] | None = None  # per step, processed scores (output_scores)
    logits: tuple[torch.Tensor, ...] | None = None  # per step, raw logits (output_logits)
    sequences_scores: torch.Tensor | None = None  # beam search: final length-normalised scores
    beam_indices: torch.Tensor | None = None  # beam search: the beam each token came from
    past_key_values: Any = None


def sample(stepper, input_ids, attention_mask, processors, criteria, *, do_sample: bool,
           pad_token_id: int | None, has_eos: bool, generator=None, streamer=None,
           output_scores: bool = False, output_logits: bool = False) -> GenerateOutput:
    """Greedy decoding, or multinomial sampling from the processed scores when `do_sample`."""
    logits = stepper.prefill(input_ids, attention_mask)
    if streamer is not None:
        streamer.put(input_ids.cpu())
    ids = input_ids
    unfinished = torch.ones(ids.shape[0], dtype=torch.bool, device=ids.device)
    scores, raw = [], []
    while True:
        processed = processors(ids, logits)
        if output_scores:
            scores.append(processed)
        if output_logits:
            raw.append(logits)
        if do_sample:
            probs = processed.softmax(-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            nxt = processed.argmax(-1)
        if has_eos:  # finished rows continue with padding
            nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad_token_id))
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        if streamer is not None:
            streamer.put(nxt.cpu())
        unfinished = unfinished & ~criteria(ids)
        if not bool(unfinished.any()):
            break
        logits = stepper.step(ids)
    if streamer is not None:
        streamer.end()
    return GenerateOutput(sequences=ids, scores=tuple(scores) if output_scores else None,
                          logits=tuple(raw) if output_logits else None, past_key_values=stepper.cache)


def _gather(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows `idx` (B, K) of the beam axis of `t` (B, N, ...)."""
    while idx.dim() < t.dim():
        idx = idx.unsqueeze(-1)
    return torch.take_along_dim(t, idx, dim=1)


@dataclass
class _Beams:
    """Running beams and the best finished hypotheses of each batch item."""

    running: torch.Tensor  # (B, N, max_length) token ids
    running_scores: torch.Tensor  # (B, N) summed log-probs
    running_origin: torch.Tensor  # (B, N, max_new) flat beam index each token came from
    finished: torch.Tensor  # (B, N, max_length)
    finished_scores: torch.Tensor  # (B, N) length-normalised; NEG while empty
    finished_origin: torch.Tensor
    is_finished: torch.Tensor  # (B, N) bool
    improvable: torch.Tensor  # (B, 1) bool: can a running beam still beat the finished ones


def _init_beams(input_ids, B: int, N: int, max_length: int, fill: int) -> _Beams:
    T = input_ids.shape[1]
    running = torch.full((B, N, max_length), fill, dtype=torch.long, device=input_ids.device)
    running[:, :, :T] = input_ids.view(B, N, T)
    scores = torch.zeros(B, N, device=input_ids.device)
    scores[:, 1:] = NEG  # only the first beam's candidates count at the first step
    origin = torch.full((B, N, max_length - T), -1, dtype=torch.long, device=input_ids.device)
    return _Beams(running, scores, origin, running.clone(), torch.full((B, N), NEG, device=input_ids.device),
                  origin.clone(), torch.zeros(B, N, dtype=torch.bool, device=input_ids.device),
                  torch.ones(B, 1, dtype=torch.bool, device=input_ids.device))


def _candidates(beams: _Beams, log_probs, cur: int, T: int, K: int, do_sample: bool, generator):
    """The K best (or K sampled) continuations over all beams of each batch item."""
    B, N = beams.running_scores.shape
    acc = (log_probs.view(B, N, -1) + beams.running_scores[..., None]).view(B, -1)  # (B, N*V)
    if do_sample:
        idx = torch.multinomial(acc.softmax(-1), K, generator=generator)
        top = acc.gather(1, idx)
        top, order = top.sort(dim=-1, descending=True)
        idx = idx.gather(1, order)
    else:
        top, idx = torch.topk(acc, K)
    V = acc.shape[1] // N
    parent = idx // V  # (B, K)
    seqs = _gather(beams.running, parent)
    seqs[:, :, cur] = idx % V
    origin = _gather(beams.running_origin, parent)
    origin[:, :, cur - T] = parent + torch.arange(B, device=parent.device)[:, None] * N
    return top, seqs, origin


def _update_finished(beams: _Beams, top, seqs, origin, hit, cur: int, T: int, length_penalty, early_stopping):
    B, N = beams.finished_scores.shape
    top_n = torch.zeros(hit.shape[1], dtype=torch.bool, device=hit.device)
    top_n[:N] = True
    just_finished = hit & top_n[None, :]  # only the N best candidates may finish
    score = top / ((cur + 1 - T) ** length_penalty)
    score = score + (beams.is_finished.all(-1, keepdim=True) & (early_stopping is True)).float() * NEG
    score = score + (~beams.improvable).float() * NEG
    score = score + (~just_finished).float() * NEG
    merged = torch.cat([beams.finished_scores, score], dim=1)
    best = torch.topk(merged, N)[1]
    beams.finished = _gather(torch.cat([beams.finished, seqs], dim=1), best)
    beams.finished_scores = _gather(merged, best)
    beams.finished_origin = _gather(torch.cat([beams.finished_origin, origin], dim=1), best)
    beams.is_finished = _gather(torch.cat([beams.is_finished, just_finished], dim=1), best)


def _still_improvable(beams: _Beams, cur: int, T: int, max_length: int, length_penalty, early_stopping):
    # Without a length penalty scores only fall, so the best running beam now is its best ever;
    # with early_stopping="never" and a positive penalty assume it reaches max_length.
    if early_stopping == "never" and length_penalty > 0.0:
        best_length = max_length - T
    else:
        best_length = cur - T
    best_running = beams.running_scores[:, :1] / (best_length ** length_penalty)
    worst_finished = torch.where(beams.is_finished, beams.finished_scores.min(1, keepdim=True)[0], NEG)
    return beams.improvable & (best_running > worst_finished).any(-1, keepdim=True)


def beam_search(stepper, input_ids, attention_mask, processors, criteria, *, num_beams: int, max_length: int,
                length_penalty: float = 1.0, early_stopping=False, num_return_sequences: int = 1,
                eos_ids: list[int] | None = None, pad_token_id: int | None = None, do_sample: bool = False,
                generator=None, output_scores: bool = False, output_logits: bool = False) -> GenerateOutput:
    """Beam search over `input_ids` (B * num_beams, T), already repeated per beam.

    Each step keeps K = max(2, 1 + #eos) * N candidates so that N beams stay alive even when
    the best ones end; finished hypotheses are scored by sum log-prob / new_length **
    length_penalty. `early_stopping`: True stops when N hypotheses are done; False stops when
    the best running beam can no longer beat them (estimated at the current length); "never"
    estimates at `max_length` for positive penalties. Returned hypotheses shorter than the
    longest are filled with `pad_token_id` (the reference fills them with the first eos id
    when pad_token_id is 0, a truthiness slip; the tokens themselves are the same).
    """
    N, T = num_beams, input_ids.shape[1]
    B = input_ids.shape[0] // N
    K = max(2, 1 + len(eos_ids or [])) * N
    fill = pad_token_id if pad_token_id is not None else (eos_ids[0] if eos_ids else -1)
    beams = _init_beams(input_ids, B, N, max_length, fill)
    logits = stepper.prefill(input_ids, attention_mask)
    scores, raw, cur = [], [], T
    while True:
        log_probs = torch.log_softmax(logits, dim=-1)
        log_probs = processors(beams.running[:, :, :cur].reshape(B * N, cur), log_probs)
        if output_scores:
            scores.append(log_probs.clone())
        if output_logits:
            raw.append(logits.clone())
        top, seqs, origin = _candidates(beams, log_probs, cur, T, K, do_sample, generator)
        hit = criteria(seqs[:, :, :cur + 1].reshape(B * K, cur + 1)).view(B, K)
        live = top + hit.float() * NEG  # finished candidates do not continue
        keep = torch.topk(live, N)[1]
        beams.running, beams.running_scores = _gather(seqs, keep), _gather(live, keep)
        beams.running_origin = _gather(origin, keep)
        _update_finished(beams, top, seqs, origin, hit, cur, T, length_penalty, early_stopping)
        stepper.reorder(beams.running_origin[:, :, cur - T].reshape(-1))
        cur += 1
        beams.improvable = _still_improvable(beams, cur, T, max_length, length_penalty, early_stopping)
        all_done = bool(beams.is_finished.all()) and early_stopping is True
        if not bool(beams.improvable.any()) or all_done or bool(hit.all()):
            break
        logits = stepper.step(beams.running[:, :, :cur].reshape(B * N, cur))
    R = num_return_sequences
    sequences = beams.finished[:, :R].reshape(B * R, -1)
    origin = beams.finished_origin[:, :R].reshape(B * R, -1)
    new_length = int((origin >= 0).sum(1).max())
    return GenerateOutput(
        sequences=sequences[:, :T + new_length],
        scores=tuple(scores) if output_scores else None,
        logits=tuple(raw) if output_logits else None,
        sequences_scores=beams.finished_scores[:, :R].reshape(-1) if output_scores else None,
        beam_indices=origin[:, :new_length],
        past_key_values=stepper.cache,
    )


__all__ = ["GenerateOutput", "sample", "beam_search"]
