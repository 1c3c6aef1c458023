"""`WhisperTokenizer`: loom's `Tokenizer` (byte-level BPE over `tokenizers`) plus Whisper's
special behaviour, matching transformers 5.24's `WhisperTokenizer`:

- every encoded text starts with the prefix `<|startoftranscript|> [<|lang|>] [<|task|>]
  [<|notimestamps|>]` and ends with `<|endoftext|>`; `set_prefix_tokens(language=, task=,
  predict_timestamps=)` changes the prefix (also read from tokenizer_config.json);
- `decode` drops timestamp tokens (`<|0.00|>` ...) from the text, or renders them with
  `decode_with_timestamps=True` (times continue across 30 s windows), returns segment
  offsets with `output_offsets=True`, and with `skip_special_tokens=True` also drops a
  `<|startofprev|>` text prompt;
- `get_decoder_prompt_ids`, `get_prompt_ids`.
Not implemented: the English / basic text normalizers (`normalize=`, `basic_normalize=` raise).
NumPy only.
"""

from __future__ import annotations

import re

import numpy as np
from tokenizers import processors

from ...errors import InputError, TokenizerError
from ...preprocessing.inputs import to_list
from ...preprocessing.tokenizer import Tokenizer
from .languages import LANGUAGES, check_task, language_code

_TIMESTAMP = re.compile(r"<\|(\d+\.\d+)\|>")
_DEFAULTS = {"unk_token": "<|endoftext|>", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}


class WhisperTokenizer(Tokenizer):
    """Whisper's tokenizer; load it with `WhisperTokenizer.from_pretrained(path)` or
    `AutoTokenizer` (tokenizer_config.json names "WhisperTokenizer")."""

    def __init__(self, backend, config: dict | None = None, *, name_or_path: str = ""):
        config = {**_DEFAULTS, **(config or {})}
        super().__init__(backend, config, name_or_path=name_or_path)
        self.language = config.get("language")
        self.task = config.get("task")
        self.predict_timestamps = bool(config.get("predict_timestamps", False))
        self.set_prefix_tokens()

    # -- the prefix --------------------------------------------------------------------------

    def set_prefix_tokens(self, language: str | None = None, task: str | None = None,
                          predict_timestamps: bool | None = None) -> None:
        """Change the tokens every encoded text starts with; None keeps the current value."""
        if language is not None:
            self.language = language
        if task is not None:
            self.task = task
        if predict_timestamps is not None:
            self.predict_timestamps = bool(predict_timestamps)
        ids = self.prefix_tokens
        tokens = self.convert_ids_to_tokens(ids)
        prefix = " ".join(f"{t}:0" for t in tokens)
        eos = self.eos_token
        self._backend.post_processor = processors.TemplateProcessing(
            single=f"{prefix} $A:0 {eos}:0", pair=f"{prefix} $A:0 $B:1 {eos}:1",
            special_tokens=[(eos, self.eos_token_id), *zip(tokens, ids)])
        self._config.update(language=self.language, task=self.task, predict_timestamps=self.predict_timestamps)

    @property
    def prefix_tokens(self) -> list[int]:
        """`<|startoftranscript|>`, then the language, task and `<|notimestamps|>` tokens set."""
        start = self.convert_tokens_to_ids("<|startoftranscript|>")
        prefix = [start]
        if self.language is not None:
            self.language = self.language.lower()
            prefix.append(start + 1 + list(LANGUAGES).index(language_code(self.language)))
        if self.task is not None:
            check_task(self.task)
            prefix.append(self.convert_tokens_to_ids(f"<|{self.task}|>"))
        if not self.predict_timestamps:
            prefix.append(self.convert_tokens_to_ids("<|notimestamps|>"))
        return prefix

    def get_decoder_prompt_ids(self, task: str | None = None, language: str | None = None,
                               no_timestamps: bool = True) -> list[tuple[int, int]]:
        """[(1, lang), (2, task), (3, notimestamps)]: the prefix after the start token, as the
        older `forced_decoder_ids` (sets the prefix too, as the reference does)."""
        self.set_prefix_tokens(task=task, language=language, predict_timestamps=not no_timestamps)
        return [(rank, token) for rank, token in enumerate(self.prefix_tokens[1:], start=1)]

    def get_prompt_ids(self, text: str, return_tensors: str | None = "np"):
        """`<|startofprev|>` and the tokens of " " + text: a text prompt for `generate(prompt_ids=)`."""
        ids = [self.convert_tokens_to_ids("<|startofprev|>")]
        ids += self(" " + text.strip(), add_special_tokens=False)["input_ids"]
        special = set(self.all_special_ids)
        bad = next((i for i in ids[1:] if i in special or i >= self.timestamp_begin), None)
        if bad is not None:
            raise TokenizerError(f"the prompt text contains the special token {self.convert_ids_to_tokens(bad)!r}, "
                                 f"which a prompt may not hold")
        if return_tensors == "pt":
            import torch

            return torch.tensor(ids)
        return np.array(ids) if return_tensors == "np" else ids

    # -- decoding ----------------------------------------------------------------------------

    @property
    def timestamp_begin(self) -> int:
        """Id of `<|0.00|>`: the token after `<|notimestamps|>` (the last special token)."""
        no_ts = self._backend.token_to_id("<|notimestamps|>")
        return no_ts + 1 if no_ts is not None else self.all_special_ids[-1] + 1

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
               output_offsets: bool = False, time_precision: float = 0.02, decode_with_timestamps: bool = False,
               normalize: bool = False, basic_normalize: bool = False, remove_diacritics: bool = False):
        """Ids to text. Timestamp tokens are dropped from the text unless
        `decode_with_timestamps`; `output_offsets` returns {"text", "offsets": [{"text",
        "timestamp": (start, end)}]}. A batch (list of lists, 2-D array) gives a list."""
        if normalize or basic_normalize or remove_diacritics:
            raise InputError("normalize= / basic_normalize= (Whisper's text normalizers) are not supported by loom")
        ids = to_list(token_ids)
        ids = [ids] if isinstance(ids, int) else ids
        if ids and isinstance(ids[0], list):
            if output_offsets:
                raise InputError("output_offsets works on one sequence at a time; decode each row")
            return [self.decode(row, skip_special_tokens, clean_up_tokenization_spaces, False, time_precision,
                                decode_with_timestamps) for row in ids]
        kept = self._strip_prompt(ids) if skip_special_tokens else ids
        if decode_with_timestamps:
            text = self._decode_with_timestamps(kept, skip_special_tokens, clean_up_tokenization_spaces,
                                                time_precision)
        else:
            text = _TIMESTAMP.sub("", super().decode(kept, skip_special_tokens, clean_up_tokenization_spaces))
        if output_offsets:
            return {"text": text, "offsets": self._compute_offsets(ids, time_precision)}
        return text

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None, **kwargs) -> list:
        rows = to_list(sequences)
        if isinstance(rows, int) or (rows and not isinstance(rows[0], list)):
            rows = [rows if isinstance(rows, list) else [rows]]
        return [self.decode(row, skip_special_tokens, clean_up_tokenization_spaces, **kwargs) for row in rows]

    def _strip_prompt(self, ids: list[int]) -> list[int]:
        """Drop a `<|startofprev|> ...` text prompt: keep from `<|startoftranscript|>` on."""
        if not ids or ids[0] != self.convert_tokens_to_ids("<|startofprev|>"):
            return ids
        start = self.convert_tokens_to_ids("<|startoftranscript|>")
        return ids[ids.index(start):] if start in ids else []

    def _decode_with_timestamps(self, ids, skip_special_tokens, clean_up, time_precision, segment_size=1500) -> str:
        """Text with `<|t|>` for each timestamp token; a timestamp lower than the one before
        starts a new 30 s window, whose times continue from where the last one ended."""
        begin = self.timestamp_begin
        parts: list = [[]]
        current = previous = offset = 0.0
        for i, token in enumerate(ids):
            if token < begin:
                parts[-1].append(token)
                continue
            time = float((token - begin) * time_precision)
            if time < current:  # the next window began
                single_ending = i >= 2 and not (ids[i - 1] >= begin and ids[i - 2] >= begin)
                if single_ending:
                    offset += time_precision * segment_size
                else:  # a closing pair: the window ended at the pair's time, shown once
                    current = previous
                    offset += previous
                    parts = parts[:-2]
            previous, current = current, time
            parts += [f"<|{time + offset:.2f}|>", []]
        return "".join(p if isinstance(p, str) else
                       Tokenizer.decode(self, p, skip_special_tokens, clean_up) if p else "" for p in parts)

    def _compute_offsets(self, ids, time_precision: float = 0.02, segment_size: int = 1500) -> list[dict]:
        """[{"text", "timestamp": (start s, end s)}] for each segment between timestamp pairs."""
        ids = np.asarray(ids).reshape(-1)
        begin = self.timestamp_begin
        stamps = ids >= begin
        ends = list(np.where(stamps[:-1] & stamps[1:])[0] + 1)
        where = np.where(stamps)[0]
        if not ends and stamps.sum() <= 1:
            return []
        if where[-1] + 1 not in ends:
            ends.append(where[-1] + 1)
        offsets, start_at, current, shift = [], int(where[0]), 0, 0
        for end_at in ends:
            piece = ids[start_at:end_at]
            if len(piece) > 1:
                start, end = int(piece[0]) - begin, int(piece[-1]) - begin
                if start < current:  # the next window began
                    single_ending = start_at >= 2 and not (ids[start_at - 2] >= begin and ids[start_at - 1] >= begin)
                    shift += segment_size if single_ending else current
                current = end
                text = _TIMESTAMP.sub("", Tokenizer.decode(self, piece.tolist()))
                offsets.append({"text": text, "timestamp": (start * time_precision + shift * time_precision,
                                                            end * time_precision + shift * time_precision)})
            start_at = int(end_at)
        return offsets


WhisperTokenizerFast = WhisperTokenizer

__all__ = ["WhisperTokenizer", "WhisperTokenizerFast"]
