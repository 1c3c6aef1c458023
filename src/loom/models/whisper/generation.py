"""Whisper's short-form `generate` (up to 30 s of audio) on top of the shared `GenerationMixin`.

What it adds, as transformers 5.24's `WhisperGenerationMixin` does for short-form audio:
- the decoder prompt `<|startoftranscript|> <|lang|> <|task|> [<|notimestamps|>]` from the
  generation config (`lang_to_id`, `task_to_id`, `no_timestamps_token_id`, `is_multilingual`,
  or the older `forced_decoder_ids`), with the language detected from the audio when a
  multilingual model is given none;
- the timestamp rules (`WhisperTimestamps`) when `return_timestamps=True`; suppressed tokens
  go through the shared `SuppressTokens` / `SuppressTokensAtBegin` processors;
- the reference's output: the generated tokens after the prompt, end-of-sequence removed, rows
  right-padded with pad_token_id. With timestamps, decoding that ends inside an unfinished
  segment seeks to the last timestamp pair and decodes the rest of the audio again, and the
  tokens of every pass are concatenated, as the reference does.
Not supported: long-form audio (> 30 s), temperature fallback, no-speech detection, token
timestamps, `condition_on_prev_tokens` (each raises or is refused by the generation config).
Differs: a decoding whose seek would not move (`<|0.00|><|0.00|>`) ends there instead of
looping forever; language detection also works on audio shorter than 30 s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...errors import InputError
from ...generation.config import GenerationConfig
from ...generation.logits import LogitsProcessor
from .languages import TASKS, check_task, language_code

INPUT_STRIDE = 2  # log-mel frames per encoder position (conv2's stride)


def setting(gen: GenerationConfig, name: str, default=None):
    """A Whisper key of the generation config: a field, or one of the file's extra keys."""
    if name in GenerationConfig.field_names():
        value = getattr(gen, name)
        return default if value is None else value
    return gen.extra.get(name, default)


class WhisperTimestamps(LogitsProcessor):
    """Whisper's timestamp rules (arXiv:2212.04356, section 4.3): timestamp tokens come in
    pairs (except just before the end), never decrease, the first generated token is a
    timestamp no later than `max_initial_timestamp_index`, and when the timestamps together
    are likelier than any single text token, a timestamp it is."""

    def __init__(self, no_timestamps_token_id: int, eos_token_id: int, begin_index: int,
                 max_initial_timestamp_index: int | None = None):
        self.no_timestamps = no_timestamps_token_id
        self.begin = no_timestamps_token_id + 1  # first timestamp token, <|0.00|>
        self.eos = eos_token_id
        self.begin_index = begin_index  # length of the decoder prompt
        self.max_initial = max_initial_timestamp_index

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, self.no_timestamps] = -float("inf")
        lowest = []  # per row: the smallest timestamp token still allowed
        for row, seq in enumerate(input_ids[:, self.begin_index:].tolist()):
            last = len(seq) >= 1 and seq[-1] >= self.begin
            penultimate = len(seq) < 2 or seq[-2] >= self.begin
            if last and penultimate:  # a pair just closed: text (or eos) must follow
                scores[row, self.begin:] = -float("inf")
            elif last:  # an open timestamp: another timestamp or eos, no text
                scores[row, :self.eos] = -float("inf")
            stamps = [t for t in seq if t >= self.begin]
            if not stamps:
                lowest.append(self.begin)
            else:  # no going back in time; after a closed pair not even the same time again
                lowest.append(stamps[-1] if last and not penultimate else stamps[-1] + 1)
        vocab = torch.arange(scores.shape[-1], device=scores.device)
        floor = torch.tensor(lowest, device=scores.device)[:, None]
        scores.masked_fill_((vocab >= self.begin) & (vocab < floor), -float("inf"))
        if input_ids.shape[1] == self.begin_index:  # the first generated token is a timestamp
            scores[:, :self.begin] = -float("inf")
            if self.max_initial is not None:
                scores[:, self.begin + self.max_initial + 1:] = -float("inf")
        logprobs = torch.log_softmax(scores.float(), dim=-1)
        stamp_mass = logprobs[:, self.begin:].logsumexp(dim=-1)
        best_text = logprobs[:, :self.begin].max(dim=-1).values
        scores[:, :self.begin].masked_fill_((stamp_mass > best_text)[:, None], -float("inf"))
        return scores


# -- the decoder prompt ---------------------------------------------------------------------

def _check_language_and_task(gen: GenerationConfig, language, task, is_multilingual) -> GenerationConfig:
    if is_multilingual is not None:
        if "is_multilingual" not in gen.extra:
            raise InputError("is_multilingual= needs a generation config with is_multilingual (an up-to-date "
                             "generation_config.json of a Whisper checkpoint)")
        gen = gen.update()
        gen.extra["is_multilingual"] = is_multilingual
    if gen.extra.get("is_multilingual", True) is False and (task is not None or language is not None):
        raise InputError("language= and task= need a multilingual model; this generation config says "
                         "is_multilingual=false (pass is_multilingual=True if the model is multilingual)")
    for name, value, table in (("language", language, "lang_to_id"), ("task", task, "task_to_id")):
        if value is not None and table not in gen.extra:
            raise InputError(f"{name}= needs {table} in the generation config (an up-to-date "
                             f"generation_config.json of a multilingual Whisper checkpoint)")
    if task is not None:
        check_task(task)
    return gen


def _language_id(gen: GenerationConfig, language: str) -> int:
    lang_to_id = gen.extra["lang_to_id"]
    token = language.lower() if isinstance(language, str) else language
    if token not in lang_to_id:
        token = f"<|{language_code(language)}|>"
    if token not in lang_to_id:
        raise InputError(f"language {language!r} ({token}) is not one of this model's languages: "
                         f"{sorted(lang_to_id)}")
    return lang_to_id[token]


@torch.no_grad()
def detect_language(model, input_features: torch.Tensor, gen: GenerationConfig) -> torch.Tensor:
    """(B,) the likeliest language token after `<|startoftranscript|>`, among `lang_to_id`."""
    start = setting(gen, "decoder_start_token_id", model.config.decoder_start_token_id)
    ids = torch.full((input_features.shape[0], 1), start, dtype=torch.long, device=input_features.device)
    window = F.pad(input_features, (0, model.config.num_frames - input_features.shape[-1]))  # < 30 s: zeros
    logits = model(input_features=window, decoder_input_ids=ids, use_cache=False).logits[:, -1]
    allowed = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    allowed[list(gen.extra["lang_to_id"].values())] = True
    return logits.masked_fill(~allowed, -float("inf")).argmax(-1)


def _forced_prefix(model, gen: GenerationConfig) -> list[int | None]:
    """Tokens after the start token that an older `forced_decoder_ids` ([[1, lang], [2, task],
    ...]) asks for; None stands for "detect the language"."""
    forced = setting(gen, "forced_decoder_ids", getattr(model.config, "forced_decoder_ids", None))
    prefix: list[int | None] = []
    if forced and forced[0][0] == 1:
        for position, (index, token) in enumerate(forced, start=1):
            if index != position:
                raise InputError(f"forced_decoder_ids {forced} do not follow Whisper's prompt pattern: "
                                 f"expected position {position}, found {index}")
            prefix.append(token)
    return prefix


def decoder_prompts(model, gen: GenerationConfig, features: torch.Tensor, language, task,
                    timestamps: bool) -> list[list[int]]:
    """One decoder prompt per batch row, as the reference builds them."""
    B = features.shape[0]
    start = setting(gen, "decoder_start_token_id", model.config.decoder_start_token_id)
    prefix = [start] + (_forced_prefix(model, gen) if task is None and language is None else [])
    languages = list(language) if isinstance(language, (list, tuple)) else [language] * B
    if len(languages) != B or (isinstance(language, (list, tuple)) and None in languages):
        raise InputError(f"language must be one string or a list of {B} strings (one per row), found {language!r}")
    prompts = [list(prefix) for _ in range(B)]
    lang_ids = None
    if language is not None:
        lang_ids = [_language_id(gen, lang) for lang in languages]
    elif "lang_to_id" in gen.extra and (len(prefix) <= 1 or prefix[1] is None):
        lang_ids = detect_language(model, features, gen).tolist()
    task_ids = gen.extra.get("task_to_id", {})
    no_ts = setting(gen, "no_timestamps_token_id")
    for row, prompt in enumerate(prompts):
        if lang_ids is not None:
            if len(prompt) > 1:
                prompt[1] = lang_ids[row]
            else:
                prompt.append(lang_ids[row])
        if task is not None:
            prompt.append(task_ids[task])
        elif language is not None and task_ids and not any(t in prompt for t in task_ids.values()):
            prompt.append(task_ids["transcribe"])
        if not timestamps and no_ts is not None and prompt[-1] != no_ts:
            prompt.append(no_ts)
        elif timestamps and prompt[-1] == no_ts:
            prompt.pop()
        prompts[row] = [t for t in prompt if t is not None]
    return prompts


# -- after decoding -------------------------------------------------------------------------

def _strip(tokens: list[int], pad: int | None, eos: list[int]) -> list[int]:
    """The reference's clean-up of one generated row: trailing padding (counted over the whole
    row, the end-of-sequence token kept when it doubles as padding), then the end token."""
    if tokens and pad is not None and tokens[-1] == pad:
        n = tokens.count(pad) - (1 if pad in eos else 0)
        if n > 0:
            tokens = tokens[:-n]
    if tokens and tokens[-1] in eos:
        tokens = tokens[:-1]
    return tokens


def split_segments(tokens: list[int], timestamp_begin: int, seek_frames: int) -> tuple[list[int], int]:
    """(tokens kept, frames to seek forward). A decoding with closed timestamp pairs that does
    not end on a single timestamp stops at its last pair: the audio after it is decoded again."""
    stamps = [t >= timestamp_begin for t in tokens]
    pairs = [i + 1 for i in range(len(stamps) - 1) if stamps[i] and stamps[i + 1]]
    if not pairs or stamps[-2:] == [False, True]:
        return tokens, seek_frames
    end = pairs[-1] + 1
    offset = (tokens[end - 2] - timestamp_begin) * INPUT_STRIDE
    return tokens[:end], offset if offset > 0 else seek_frames


def _max_length(model, gen: GenerationConfig, prompt_length: int) -> int:
    limit = model.config.max_target_positions
    if gen.max_new_tokens is not None:
        if gen.max_new_tokens + prompt_length > limit:
            raise InputError(
                f"the decoder prompt has {prompt_length} tokens and max_new_tokens={gen.max_new_tokens}: "
                f"together {gen.max_new_tokens + prompt_length}, more than max_target_positions={limit}")
        return prompt_length + gen.max_new_tokens
    if gen.max_length is not None:  # as the reference: max_length counts from after the prompt
        return min(gen.max_length + min(limit // 2 - 1, prompt_length), limit)
    return min(prompt_length + 20, limit)


def _features(model, input_features) -> torch.Tensor:
    if input_features is None:
        raise InputError("generate() on Whisper needs input_features (log-mel features from the feature extractor)")
    features = torch.as_tensor(input_features, device=model.device)
    N = model.config.num_frames
    if features.dim() != 3 or features.shape[1] != model.config.num_mel_bins or features.shape[2] > N:
        raise InputError(
            f"input_features must have shape (batch, num_mel_bins={model.config.num_mel_bins}, frames <= {N}), "
            f"found {tuple(features.shape)}; audio longer than 30 s (long-form) is not supported")
    return features.to(model.dtype)


def whisper_generate(model, base_generate, input_features, generation_config, *, language, task,
                     return_timestamps, is_multilingual, **kwargs):
    """See `WhisperForConditionalGeneration.generate`."""
    gen = generation_config or model.generation_config
    names = GenerationConfig.field_names()
    gen = gen.update(**{k: v for k, v in kwargs.items() if k in names})
    rest = {k: v for k, v in kwargs.items() if k not in names}
    if "encoder_outputs" in rest:
        raise InputError("Whisper's generate takes input_features, not encoder_outputs")
    features = _features(model, input_features)
    language = setting(gen, "language") if language is None else language
    task = setting(gen, "task") if task is None else task
    gen = _check_language_and_task(gen, language, task, is_multilingual)
    timestamps = bool(setting(gen, "return_timestamps", False) if return_timestamps is None else return_timestamps)
    no_ts = setting(gen, "no_timestamps_token_id")
    if timestamps and no_ts is None:
        raise InputError("return_timestamps=True needs no_timestamps_token_id in the generation config")
    if timestamps and gen.return_dict_in_generate:
        raise InputError("return_dict_in_generate=True with return_timestamps=True is not supported")
    timestamp_begin = no_ts + 1 if no_ts is not None else model.config.vocab_size + 1
    rest.pop("attention_mask", None)  # short-form audio: the encoder takes no mask, as in the reference
    given = rest.pop("decoder_input_ids", None)
    prompts = decoder_prompts(model, gen, features, language, task, timestamps)
    prompt_ids = rest.pop("prompt_ids", None)
    if prompt_ids is not None:  # text to condition on (tokenizer.get_prompt_ids), before the prompt
        prompt_ids = torch.as_tensor(prompt_ids).tolist()
        prompts = [prompt_ids + p for p in prompts]
    # A given decoder_input_ids (the reference's older API) is the first pass's prompt only.
    first = prompts if given is None else _given_prompt(given, features.shape[0])
    R = gen.num_return_sequences  # as the reference: each of R copies decodes on its own
    first, prompts = ([p for p in rows for _ in range(R)] for rows in (first, prompts))
    features = features.repeat_interleave(R, dim=0)
    processors = list(rest.pop("logits_processor", None) or [])
    if timestamps:
        eos = gen.eos_ids[0] if gen.eos_ids else gen.bos_token_id
        processors.insert(0, WhisperTimestamps(no_ts, eos, len(first[0]), setting(gen, "max_initial_timestamp_index")))
    run = dict(generation_config=gen.update(num_return_sequences=1), logits_processor=processors, **rest)
    return _decode_segments(model, base_generate, features, (first, prompts), run, timestamp_begin)


def _given_prompt(given, B: int) -> list[list[int]]:
    given = torch.as_tensor(given)
    given = given[None] if given.dim() == 1 else given
    if given.dim() != 2 or given.shape[0] not in (1, B):
        raise InputError(f"decoder_input_ids must have shape (1 or {B}, tokens), found {tuple(given.shape)}")
    return given.expand(B, -1).tolist()


def _decode_segments(model, base_generate, features, prompts, run, timestamp_begin: int):
    """Decode every row's window; rows whose decoding stopped inside a segment decode again from
    their last timestamp pair (later passes start from `prompts[1]`), until all the audio is done."""
    gen, N = run["generation_config"], model.config.num_frames
    B, frames = features.shape[0], features.shape[-1]
    pad = gen.pad_token_id if gen.pad_token_id is not None else (gen.eos_ids[0] if gen.eos_ids else None)
    seek, kept, rows = [0] * B, [[] for _ in range(B)], prompts[0]
    while any(s < frames for s in seek):
        active = [i for i in range(B) if seek[i] < frames]
        windows = [min(frames - seek[i], N) for i in active]
        segment = torch.stack([F.pad(features[i, :, seek[i]:seek[i] + w], (0, N - w))
                               for i, w in zip(active, windows)])
        prompt = torch.tensor([rows[i] for i in active], dtype=torch.long, device=features.device)
        T = prompt.shape[1]
        for processor in run["logits_processor"]:  # as the reference: rules start after this pass's prompt
            if hasattr(processor, "begin_index"):
                processor.begin_index = T
        step = gen.update(max_length=_max_length(model, gen, T), max_new_tokens=None)
        out = base_generate(segment, decoder_input_ids=prompt, **{**run, "generation_config": step})
        if gen.return_dict_in_generate:  # one pass (no timestamps): the reference returns it whole
            return out
        for row, (i, w) in enumerate(zip(active, windows)):
            tokens = _strip(out[row, T:].tolist(), pad, gen.eos_ids)
            tokens, offset = split_segments(tokens, timestamp_begin, w)
            kept[i] += tokens
            seek[i] += offset
        rows = prompts[1]
    longest = max(len(k) for k in kept)
    filler = pad if pad is not None else 0
    return torch.tensor([k + [filler] * (longest - len(k)) for k in kept], dtype=torch.long,
                        device=features.device).view(B, longest)


__all__ = ["WhisperTimestamps", "whisper_generate", "decoder_prompts", "detect_language", "split_segments",
           "setting", "TASKS"]
