"""Streaming generated text while `generate` runs.

`generate(..., streamer=s)` calls `s.put(prompt_ids)` once, `s.put(token)` after each step
and `s.end()` at the end (batch of one). `TextStreamer` writes text to a stream (stdout by
default) as soon as it is settled; `TextIteratorStreamer` hands it to another thread through
a queue: run `generate` in a thread and iterate over the streamer.
Text is settled at word boundaries: a word may still change while its tokens arrive, and an
incomplete UTF-8 character decodes to U+FFFD until its last byte comes.
"""

from __future__ import annotations

import sys
from queue import Queue
from typing import IO

from ..errors import InputError


class BaseStreamer:
    def put(self, value) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError


class TextStreamer(BaseStreamer):
    """Decode tokens as they come and write each settled piece of text to `stream`."""

    def __init__(self, tokenizer, skip_prompt: bool = False, stream: IO[str] | None = None, **decode_kwargs):
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.stream = stream
        self.decode_kwargs = decode_kwargs
        self._ids: list[int] = []  # tokens since the last line break (plus one before it)
        self._done = 0  # characters of decode(_ids) already emitted
        self._next_is_prompt = True

    def put(self, value) -> None:
        if value.dim() > 1:
            if value.shape[0] != 1:
                raise InputError(f"{type(self).__name__} streams a batch of one, found batch {value.shape[0]}")
            value = value[0]
        if self._next_is_prompt:
            self._next_is_prompt = False
            if self.skip_prompt:
                return
        self._ids.extend(value.tolist())
        text = self.tokenizer.decode(self._ids, **self.decode_kwargs)
        if text.endswith("\n"):
            # Restart from the last token, so decoding stays short and keeps its leading space.
            piece = text[self._done:]
            self._ids = self._ids[-1:]
            self._done = len(self.tokenizer.decode(self._ids, **self.decode_kwargs))
        else:
            settled = text.rstrip("\ufffd")  # an incomplete character waits for its last byte
            cut = settled.rfind(" ") + 1 if settled and not settled[-1].isspace() else len(settled)
            piece = text[self._done:cut] if cut > self._done else ""
            self._done += len(piece)
        if piece:
            self.on_text(piece)

    def end(self) -> None:
        text = self.tokenizer.decode(self._ids, **self.decode_kwargs) if self._ids else ""
        self._ids, self._next_is_prompt = [], True
        piece, self._done = text[self._done:], 0
        self.on_text(piece, stream_end=True)

    def on_text(self, text: str, stream_end: bool = False) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        stream.write(text + ("\n" if stream_end else ""))
        stream.flush()


class TextIteratorStreamer(TextStreamer):
    """Iterate over the text pieces (in another thread than `generate`). `timeout` seconds
    without a piece raise `queue.Empty`, so a failed generation does not block forever."""

    _END = object()

    def __init__(self, tokenizer, skip_prompt: bool = False, timeout: float | None = None, **decode_kwargs):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.queue: Queue = Queue()
        self.timeout = timeout

    def on_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.queue.put(text)
        if stream_end:
            self.queue.put(self._END)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        item = self.queue.get(timeout=self.timeout)
        if item is self._END:
            raise StopIteration
        return item


__all__ = ["BaseStreamer", "TextStreamer", "TextIteratorStreamer"]
