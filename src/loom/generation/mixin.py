"""`GenerationMixin`: `generate()` for causal language models, and its compiled path.

A causal LM class inherits it (`class LlamaForCausalLM(GenerationMixin, LlamaPreTrainedModel)`)
and needs only a forward taking `input_ids, attention_mask, position_ids, past_key_values,
use_cache, logits_to_keep` and returning `.logits` and `.past_key_values`.

Batched prompts are left-padded: positions come from the attention mask, so each row decodes
exactly as it would alone.

Encoder-decoder models (`config.is_encoder_decoder`) go through the same strategies: the
encoder runs once on the input (`input_ids`, or the model's `main_input_name` such as
`input_features`), the decoder starts from `decoder_start_token_id` (or a given
`decoder_input_ids` prompt) and decodes with an `EncoderDecoderCache`, whose cross-attention
keys and values are computed on the first step and reused. The model needs a `get_encoder()`
and a forward taking `encoder_outputs, attention_mask, decoder_input_ids, past_key_values,
use_cache, logits_to_keep`. Returned sequences are decoder tokens, start token included. The compiled path (`compile_for_generation`) decodes with a
preallocated `StaticCache` through a `torch.compile`d step, compiled once during an explicit
warm-up; a call that would need another compilation raises instead of recompiling.
"""

from __future__ import annotations

import logging
import os

import torch

from ..errors import InputError
from ..modeling.outputs import BaseModelOutput
from ..nn.cache import DynamicCache, EncoderDecoderCache, StaticCache
from ..nn.masks import position_ids_from_mask
from .config import DEFAULT_MAX_NEW_TOKENS, GENERATION_CONFIG_NAME, GenerationConfig
from .decode import GenerateOutput, beam_search, sample
from .logits import build_processors
from .stopping import build_criteria

logger = logging.getLogger(__name__)
_HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token", "subfolder", "force_download")


class EagerStepper:
    """Runs the model as is: a DynamicCache (or, with use_cache=False, the whole sequence at
    every step)."""

    def __init__(self, model, use_cache: bool = True):
        self.model, self.use_cache = model, use_cache
        self.cache = None

    def _logits(self, ids, mask, positions):
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=self.cache,
                         use_cache=self.use_cache, logits_to_keep=1, return_dict=True)
        return out.logits[:, -1].float()

    def prefill(self, input_ids, attention_mask):
        self.cache = DynamicCache() if self.use_cache else None
        self.mask = attention_mask
        return self._logits(input_ids, attention_mask, position_ids_from_mask(attention_mask, 0, input_ids.shape[1]))

    def step(self, sequences):
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
        if self.use_cache:
            L = sequences.shape[1]
            return self._logits(sequences[:, -1:], self.mask, position_ids_from_mask(self.mask, L - 1, 1))
        return self._logits(sequences, self.mask, position_ids_from_mask(self.mask, 0, sequences.shape[1]))

    def reorder(self, beam_idx):
        if self.cache is not None:
            self.cache.reorder(beam_idx)
        self.mask = self.mask[beam_idx.to(self.mask.device)]


class Seq2SeqStepper:
    """Runs the decoder of an encoder-decoder model over a fixed encoder output (B, S, C)."""

    def __init__(self, model, encoder_hidden, encoder_mask, use_cache: bool = True):
        self.model, self.use_cache = model, use_cache
        self.encoder_hidden, self.encoder_mask = encoder_hidden, encoder_mask
        self.cache = None

    def _logits(self, ids):
        out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=self.encoder_hidden),
                         attention_mask=self.encoder_mask, decoder_input_ids=ids, past_key_values=self.cache,
                         use_cache=self.use_cache, logits_to_keep=1, return_dict=True)
        return out.logits[:, -1].float()

    def prefill(self, input_ids, attention_mask):
        self.cache = EncoderDecoderCache() if self.use_cache else None
        return self._logits(input_ids)

    def step(self, sequences):
        return self._logits(sequences[:, -1:] if self.use_cache else sequences)

    def reorder(self, beam_idx):
        if self.cache is not None:
            self.cache.reorder(beam_idx)
        idx = beam_idx.to(self.encoder_hidden.device)
        self.encoder_hidden = self.encoder_hidden.index_select(0, idx)
        if self.encoder_mask is not None:
            self.encoder_mask = self.encoder_mask.index_select(0, idx)


class CompiledStepper:
    """Decodes with a preallocated StaticCache and the compiled one-token step of
    `compile_for_generation`; the prompt itself runs eagerly."""

    def __init__(self, model, compiled):
        self.model, self.compiled = model, compiled
        self.cache: StaticCache = compiled["cache"]

    def prefill(self, input_ids, attention_mask):
        B, T = input_ids.shape
        self.cache.reset()
        # One fixed (B, max_cache_len) mask for every step: the prompt's padding, then ones.
        self.mask = attention_mask.new_ones(B, self.cache.max_cache_len)
        self.mask[:, :T] = attention_mask
        positions = position_ids_from_mask(self.mask, 0, T)
        self.next_position = positions[:, -1:] + 1
        out = self.model(input_ids=input_ids, attention_mask=self.mask, position_ids=positions,
                         past_key_values=self.cache, use_cache=True, logits_to_keep=1, return_dict=True)
        return out.logits[:, -1].float()

    def step(self, sequences):
        with torch.compiler.set_stance("fail_on_recompile"):
            logits = self.compiled["step"](_last_column(sequences), self.mask, self.next_position)
        self.next_position = self.next_position + 1
        return logits

    def reorder(self, beam_idx):
        self.cache.reorder(beam_idx)
        self.mask = self.mask[beam_idx.to(self.mask.device)]
        self.next_position = self.next_position[beam_idx.to(self.mask.device)]


def _last_column(ids: torch.Tensor) -> torch.Tensor:
    """The last token of each row as a (B, 1) tensor with strides (1, 1) whatever the length:
    a (1, 1) slice counts as contiguous with stride (L, 1), which would change the compiled
    graph's guards at every step."""
    return ids[:, -1:].clone(memory_format=torch.contiguous_format)


def _decode_step(model, cache, input_ids, attention_mask, position_ids):
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                past_key_values=cache, use_cache=True, logits_to_keep=1, return_dict=True)
    return out.logits[:, -1].float()


@torch.no_grad()
def _warm_up(stepper: CompiledStepper, batch_size: int, max_length: int) -> None:
    """Compile the step on a dummy prompt, then run a second step under the no-recompile
    stance to prove later calls reuse it."""
    ids = torch.zeros(batch_size, 1, dtype=torch.long, device=stepper.model.device)
    stepper.prefill(ids, torch.ones_like(ids))
    for i in range(min(2, max_length - 1)):
        ids = torch.cat([ids, torch.zeros_like(ids[:, :1])], dim=1)
        if i == 0:  # the one compilation
            stepper.compiled["step"](_last_column(ids), stepper.mask, stepper.next_position)
            stepper.next_position = stepper.next_position + 1
        else:
            stepper.step(ids)
    stepper.cache.reset()


class GenerationMixin:
    """`generate()`, `generation_config` and the compiled decoding path of causal LMs."""

    # -- generation config ------------------------------------------------------------------

    @property
    def generation_config(self) -> GenerationConfig:
        config = self.__dict__.get("_generation_config")
        if config is None:
            config = GenerationConfig.from_model_config(self.config)
            self.__dict__["_generation_config"] = config
        return config

    @generation_config.setter
    def generation_config(self, value: GenerationConfig) -> None:
        if not isinstance(value, GenerationConfig):
            raise InputError(f"generation_config must be a GenerationConfig, found {type(value).__name__}")
        self.__dict__["_generation_config"] = value

    @classmethod
    def from_pretrained(cls, path_or_repo_id, **kwargs):
        """As `PreTrainedModel.from_pretrained`, plus `generation_config.json` when present."""
        from ..hub import pin, resolve

        # One commit for weights and generation config: pin before either is fetched.
        kwargs["revision"] = pin(path_or_repo_id, kwargs.get("revision"))
        model = super().from_pretrained(path_or_repo_id, **kwargs)
        if kwargs.get("gguf_file") is None and not os.path.isfile(path_or_repo_id):  # not GGUF
            hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
            path = resolve(path_or_repo_id, GENERATION_CONFIG_NAME, required=False, **hub)
            if path is not None:
                model.generation_config = GenerationConfig.from_json_file(path)
        return model

    def save_pretrained(self, save_directory: str | os.PathLike, *, max_shard_size: int | str = "5GB",
                        state_dict: dict | None = None) -> list[str]:
        """As `PreTrainedModel.save_pretrained`, plus `generation_config.json`."""
        written = super().save_pretrained(save_directory, max_shard_size=max_shard_size, state_dict=state_dict)
        self.generation_config.save_pretrained(save_directory)
        return written + [GENERATION_CONFIG_NAME]

    # -- generate ---------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                 generation_config: GenerationConfig | None = None, *, logits_processor=None,
                 stopping_criteria=None, streamer=None, tokenizer=None, generator: torch.Generator | None = None,
                 seed: int | None = None, decoder_input_ids: torch.Tensor | None = None,
                 input_features: torch.Tensor | None = None, encoder_outputs=None, **kwargs):
        """Continue `input_ids` (B, T): greedy, sampling or beam search, as the generation
        config says (keyword arguments override `model.generation_config`).

        Returns the sequences (B * num_return_sequences, L), prompt included, or a
        `GenerateOutput` with `return_dict_in_generate=True`. `seed` (or `generator`) makes
        sampling reproducible; `tokenizer` is needed for `stop_strings`.

        Prompts must be left-padded (a mask ending in 0 raises InputError); a prompt longer
        than the model's positions raises; a max_length past them is cut there, with a warning.

        Encoder-decoder models: `input_ids` (or `input_features`, or ready `encoder_outputs`)
        and `attention_mask` are the encoder's input (padded on either side); the decoder
        starts from `decoder_input_ids` or `decoder_start_token_id`.
        """
        gen = (generation_config or self.generation_config).update(**kwargs)
        eos = gen.eos_ids
        pad = gen.pad_token_id if gen.pad_token_id is not None else (eos[0] if eos else None)
        encoder = None
        if getattr(self.config, "is_encoder_decoder", False):
            encoder = self._encode(input_ids if input_features is None else input_features, attention_mask,
                                   encoder_outputs, gen, pad, eos)
            input_ids = self._decoder_prompt(decoder_input_ids, gen, encoder[0].shape[0], encoder[0].device)
            attention_mask = None
        elif decoder_input_ids is not None or input_features is not None or encoder_outputs is not None:
            raise InputError(f"{type(self).__name__} is not an encoder-decoder model: decoder_input_ids, "
                             f"input_features and encoder_outputs do not apply")
        input_ids = self._prompt_ids(input_ids, gen)
        if encoder is None:
            attention_mask = self._prompt_mask(input_ids, attention_mask, pad, eos)
        else:  # the decoder prompt is never padded (its start token may equal pad_token_id)
            attention_mask = torch.ones_like(input_ids)
        T = input_ids.shape[1]
        max_length = self._max_length(gen, T)
        if seed is not None:
            generator = torch.Generator(device=input_ids.device).manual_seed(seed)
        expand = gen.num_beams if gen.num_beams > 1 else gen.num_return_sequences
        if expand > 1:
            input_ids = input_ids.repeat_interleave(expand, dim=0)
            attention_mask = attention_mask.repeat_interleave(expand, dim=0)
            if encoder is not None:
                encoder = tuple(t.repeat_interleave(expand, dim=0) if t is not None else None for t in encoder)
        padding = (attention_mask != 0).int().argmax(dim=1)  # left-padding length per row
        processors = build_processors(gen, T, padding, logits_processor, max_length=max_length)
        criteria = build_criteria(gen, max_length, tokenizer, stopping_criteria)
        if encoder is not None:
            stepper = Seq2SeqStepper(self, *encoder, use_cache=gen.use_cache)
        else:
            stepper = self._stepper(gen, input_ids.shape[0], max_length)
        outputs = dict(output_scores=gen.output_scores and gen.return_dict_in_generate,
                       output_logits=gen.output_logits and gen.return_dict_in_generate)
        if gen.num_beams > 1:
            if streamer is not None:
                raise InputError("streamer does not work with beam search (num_beams > 1)")
            out = beam_search(stepper, input_ids, attention_mask, processors, criteria, num_beams=gen.num_beams,
                              max_length=max_length, length_penalty=gen.length_penalty,
                              early_stopping=gen.early_stopping, num_return_sequences=gen.num_return_sequences,
                              eos_ids=eos, pad_token_id=pad, do_sample=gen.do_sample, generator=generator, **outputs)
        else:
            out = sample(stepper, input_ids, attention_mask, processors, criteria, do_sample=gen.do_sample,
                         pad_token_id=pad, has_eos=bool(eos), generator=generator, streamer=streamer, **outputs)
        return out if gen.return_dict_in_generate else out.sequences

    # -- encoder-decoder inputs -------------------------------------------------------------

    def _encode(self, inputs, attention_mask, encoder_outputs, gen: GenerationConfig, pad, eos):
        """(encoder hidden states (B, S, C), encoder attention mask (B, S) or None)."""
        if encoder_outputs is not None:
            hidden = encoder_outputs[0] if isinstance(encoder_outputs, (tuple, list)) else \
                encoder_outputs.last_hidden_state
            mask = None if attention_mask is None else torch.as_tensor(attention_mask, device=hidden.device)
            return hidden, mask
        name = getattr(self, "main_input_name", "input_ids")
        if inputs is None:
            raise InputError(f"generate() on {type(self).__name__} needs the encoder input ({name})")
        inputs = torch.as_tensor(inputs, device=self.device)
        if name == "input_ids":
            if inputs.dim() == 1:
                inputs = inputs[None]
            if inputs.dim() != 2 or inputs.shape[1] == 0 or inputs.is_floating_point():
                raise InputError(f"input_ids must be token ids of shape (batch, tokens), found "
                                 f"{tuple(inputs.shape)} {inputs.dtype}")
            if attention_mask is None and pad is not None and pad not in eos and bool((inputs == pad).any()):
                attention_mask = (inputs != pad).long()  # as the reference: padding inferred from pad id
        if attention_mask is not None:
            attention_mask = torch.as_tensor(attention_mask, device=self.device)
            if attention_mask.shape != inputs.shape[:2]:
                raise InputError(f"attention_mask has shape {tuple(attention_mask.shape)}, the encoder input "
                                 f"{name} {tuple(inputs.shape)}")
        out = self.get_encoder()(**{name: inputs}, attention_mask=attention_mask, return_dict=True)
        return out.last_hidden_state, attention_mask

    def _decoder_prompt(self, decoder_input_ids, gen: GenerationConfig, batch_size: int, device) -> torch.Tensor:
        if decoder_input_ids is not None:
            ids = torch.as_tensor(decoder_input_ids, device=device)
            ids = ids[None] if ids.dim() == 1 else ids
            if ids.shape[0] == 1 and batch_size > 1:
                ids = ids.expand(batch_size, -1)
            if ids.dim() != 2 or ids.shape[0] != batch_size:
                raise InputError(f"decoder_input_ids must have shape ({batch_size}, tokens) for {batch_size} "
                                 f"encoder inputs, found {tuple(ids.shape)}")
            return ids
        start = gen.decoder_start_token_id
        if start is None:
            start = getattr(self.config, "decoder_start_token_id", None)
        if start is None:
            start = gen.bos_token_id
        if start is None:
            raise InputError("generate() needs decoder_start_token_id (generation config or model config) "
                             "or decoder_input_ids to start the decoder")
        return torch.full((batch_size, 1), start, dtype=torch.long, device=device)

    def _prompt_ids(self, input_ids, gen: GenerationConfig) -> torch.Tensor:
        if input_ids is None:
            if gen.bos_token_id is None:
                raise InputError("generate() needs input_ids, or a bos_token_id to start from")
            return torch.tensor([[gen.bos_token_id]], device=self.device)
        if not isinstance(input_ids, torch.Tensor):
            input_ids = torch.as_tensor(input_ids)
        if input_ids.dim() == 1:
            input_ids = input_ids[None]
        if input_ids.dim() != 2 or input_ids.shape[1] == 0 or input_ids.is_floating_point():
            raise InputError(f"input_ids must be token ids of shape (batch, tokens), found {tuple(input_ids.shape)} "
                             f"{input_ids.dtype}")
        limit = getattr(self.config, "position_limit", None)
        if limit is not None and input_ids.shape[1] > limit:
            raise InputError(f"the prompt has {input_ids.shape[1]} tokens; this model takes at most {limit} "
                             f"(max_position_embeddings). Shorten or truncate it.")
        return input_ids.to(self.device)

    def _prompt_mask(self, input_ids, attention_mask, pad, eos) -> torch.Tensor:
        if attention_mask is not None:
            attention_mask = torch.as_tensor(attention_mask, device=input_ids.device)
            if attention_mask.shape != input_ids.shape:
                raise InputError(f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids "
                                 f"{tuple(input_ids.shape)}")
            if bool((attention_mask[:, -1] == 0).any()):
                raise InputError("attention_mask has padding at the end of a row: pad prompts on the left "
                                 "for generation (tokenizer padding_side='left')")
            return attention_mask.long()
        # As the reference: padding is inferred from pad_token_id unless it doubles as eos.
        if pad is not None and pad not in eos and bool((input_ids == pad).any()):
            return (input_ids != pad).long()
        return torch.ones_like(input_ids)

    def _max_length(self, gen: GenerationConfig, T: int) -> int:
        limit = getattr(self.config, "position_limit", None)
        if gen.max_new_tokens is not None:
            max_length = T + gen.max_new_tokens
        elif gen.max_length is not None:
            max_length = gen.max_length
            if max_length <= T:
                raise InputError(f"max_length={max_length} leaves no room after the {T}-token prompt; "
                                 f"set max_new_tokens instead")
        else:
            max_length = T + DEFAULT_MAX_NEW_TOKENS
            if limit is not None:
                max_length = min(max_length, limit)
        if limit is not None and max_length > limit:
            logger.warning("generation stops at %d tokens, the model's max_position_embeddings "
                           "(asked for %d)", limit, max_length)
            max_length = limit
        return max_length

    # -- compiled decoding ------------------------------------------------------------------

    def _stepper(self, gen: GenerationConfig, batch_size: int, max_length: int):
        compiled = self.__dict__.get("_compiled_generation")
        if compiled is None or not gen.use_cache:
            return EagerStepper(self, use_cache=gen.use_cache)
        if batch_size != compiled["batch_size"] or max_length > compiled["max_length"]:
            raise InputError(
                f"this model was compiled for generation with batch_size={compiled['batch_size']} and "
                f"max_length={compiled['max_length']}; this call needs batch {batch_size} (beams and "
                f"return sequences included) and max_length {max_length}. Call compile_for_generation "
                f"again, or uncompile_for_generation() to decode eagerly."
            )
        return CompiledStepper(self, compiled)

    def compile_for_generation(self, batch_size: int, max_length: int, *, mode: str | None = None,
                               backend: str = "inductor") -> None:
        """Compile the one-token decoding step for a (batch_size, max_length) static cache and
        warm it up now. Later `generate` calls with that batch size (num_beams and
        num_return_sequences included) and at most `max_length` tokens reuse the compiled
        step; any other call raises instead of compiling again."""
        if getattr(self.config, "is_encoder_decoder", False):
            raise InputError("compile_for_generation supports decoder-only models; encoder-decoder models "
                             "decode eagerly")
        for name, value in (("batch_size", batch_size), ("max_length", max_length)):
            if not isinstance(value, int) or value <= 0:
                raise InputError(f"{name} must be a positive int, found {value!r}")
        cache = StaticCache(max_length)
        compiled_fn = torch.compile(_decode_step, dynamic=False, mode=mode, backend=backend)

        def step(ids, mask, positions):
            return compiled_fn(self, cache, ids, mask, positions)

        compiled = {"batch_size": batch_size, "max_length": max_length, "cache": cache, "step": step}
        _warm_up(CompiledStepper(self, compiled), batch_size, max_length)
        self.__dict__["_compiled_generation"] = compiled

    def uncompile_for_generation(self) -> None:
        """Drop the compiled path; `generate` decodes eagerly again."""
        self.__dict__.pop("_compiled_generation", None)


__all__ = ["GenerationMixin", "EagerStepper", "CompiledStepper", "Seq2SeqStepper"]
