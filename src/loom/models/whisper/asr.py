"""Whisper's transcript from the tokens of one or several overlapping audio chunks.

Used by the `automatic-speech-recognition` pipeline. Each chunk's output is a dict with
`"tokens"` (a list of ids) and, for chunked audio, `"stride"` = (chunk seconds, left overlap
seconds, right overlap seconds). The result follows the reference pipeline:

- text tokens are gathered per segment; without timestamps the whole audio is one segment;
- with timestamps, a pair of timestamp tokens closes a segment `{"timestamp": (start, end),
  "text"}`, times shifted by each chunk's place in the audio; timestamps inside an overlap
  are not used to close segments (the neighbouring chunk sees that audio too);
- the token lists that overlapping chunks give for one segment are joined where they agree
  best (`merge_overlapping`);
- language tokens (`<|fr|>`) set each segment's `"language"`; a change of language without
  timestamps closes the segment.
No torch import.
"""

from __future__ import annotations

import logging

from .languages import LANGUAGES

logger = logging.getLogger(__name__)


def merge_overlapping(sequences: list[list[int]]) -> list[int]:
    """Join token lists of consecutive overlapping chunks into one.

    For each neighbour pair, every alignment of the right list's start against the left
    list's end is scored by the fraction of equal tokens in the overlap (plus a tiny bonus
    for longer overlaps); the best one with at least two equal tokens wins, and the overlap
    is cut in its middle: tokens before it come from the left chunk, after it from the right
    one. Without such an alignment the lists are simply concatenated.
    """
    merged: list[int] = []
    left = list(sequences[0])
    for right in sequences[1:]:
        nl, nr = len(left), len(right)
        best, cut = 0.0, (nl, nl, 0, 0)
        for shift in range(1, nl + nr):  # `shift` tokens of the two lists lie on top of each other
            l0, l1 = max(0, nl - shift), min(nl, nl + nr - shift)
            r0, r1 = max(0, shift - nl), min(nr, shift)
            same = sum(a == b for a, b in zip(left[l0:l1], right[r0:r1]))
            score = same / shift + shift / 10000.0
            if same > 1 and score > best:
                best, cut = score, (l0, l1, r0, r1)
        l0, l1, r0, r1 = cut
        merged.extend(left[:(l0 + l1) // 2])
        left = list(right[(r0 + r1) // 2:])
    return merged + left


class _Transcript:
    """The segments read so far, and the open one."""

    def __init__(self, tokenizer, return_timestamps: bool):
        self.tokenizer, self.return_timestamps = tokenizer, return_timestamps
        self.segments: list[dict] = []
        self.language: str | None = None
        self.pieces: list[list[int]] = []  # the open segment's tokens, one list per chunk
        self.open = self._new()

    def _new(self) -> dict:
        return {"language": self.language, "timestamp": [None, None], "text": ""}

    def close(self, current: list[int] | None) -> None:
        if current is not None:
            self.pieces.append(current)
        self.open["text"] = self.tokenizer.decode(merge_overlapping(self.pieces))
        self.segments.append(self.open)
        self.pieces = []
        self.open = self._new()

    def set_language(self, language: str, current: list[int]) -> list[int]:
        """A language token; returns the (possibly restarted) current token list."""
        if self.language and language != self.language and not self.return_timestamps:
            self.close(current)
            current = []
        self.open["language"] = language
        self.language = language
        return current


def decode_asr(tokenizer, outputs: list[dict], *, return_timestamps: bool = False,
               return_language: bool = False, time_precision: float = 0.02) -> tuple[str, dict]:
    """(full text, {"chunks": [...]} when timestamps or languages are asked for, else {})."""
    ts_begin = tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1
    special = set(tokenizer.all_special_ids)
    out = _Transcript(tokenizer, bool(return_timestamps))
    offset, skip = 0.0, False
    for output in outputs:
        ids = _strip_prompt(tokenizer, list(output["tokens"]))
        stop_at, first_allowed = None, ts_begin  # timestamps inside the overlaps
        if "stride" in output:
            chunk_len, left, right = output["stride"]
            offset -= left
            if left:
                first_allowed = left / time_precision + ts_begin
            if right:
                right_start = chunk_len - right
                for t in reversed(ids):  # the earliest timestamp of the trailing run in the right overlap
                    if t >= ts_begin:
                        if stop_at is not None and (t - ts_begin) * time_precision < right_start:
                            break
                        stop_at = t
        current: list[int] = []
        for t in ids:
            if t in special:
                language = LANGUAGES.get(tokenizer.decode([t])[2:-2])
                if language is not None:
                    current = out.set_language(language, current)
            elif t >= ts_begin:
                time = round((t - ts_begin) * time_precision + offset, 2)
                if stop_at and t >= stop_at:
                    skip = True  # in the right overlap: the next chunk decides; its pair goes too
                elif skip or (out.pieces and t < first_allowed):
                    skip = False
                elif out.open["timestamp"][0] is None:
                    out.open["timestamp"][0] = time
                elif time != out.open["timestamp"][0]:  # an equal pair is a start, not an end
                    out.open["timestamp"][1] = time
                    out.close(current)
                    current = []
            else:
                current.append(t)
        if "stride" in output:
            offset += chunk_len - right
        if current:
            out.pieces.append(current)
        elif not any(out.pieces):
            out.pieces, out.open = [], out._new()
    if out.pieces:
        if return_timestamps:
            logger.warning("Whisper predicted no final timestamp (audio cut mid-word?): the last "
                           "segment has no end time")
        out.close(None)
    text = "".join(s["text"] for s in out.segments)
    if not (return_timestamps or return_language):
        return text, {}
    for s in out.segments:
        if return_timestamps:
            s["timestamp"] = tuple(s["timestamp"])
        else:
            del s["timestamp"]
        if not return_language:
            del s["language"]
    return text, {"chunks": out.segments}


def _strip_prompt(tokenizer, ids: list[int]) -> list[int]:
    """Drop a `<|startofprev|> ... ` prompt before `<|startoftranscript|>`."""
    prev = tokenizer.convert_tokens_to_ids("<|startofprev|>")
    start = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    if ids and prev is not None and ids[0] == prev:
        return ids[ids.index(start):] if start in ids else []
    return ids


__all__ = ["decode_asr", "merge_overlapping"]
