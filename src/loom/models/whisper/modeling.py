"""Whisper (Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak Supervision",
arXiv:2212.04356).

Encoder: two 1-D convolutions (the second with stride 2) with GELU over log-mel frames, fixed
sinusoidal positions (stored in checkpoints as `embed_positions.weight`), pre-LN blocks.
Decoder: token embeddings plus learned positions, pre-LN blocks with causal self-attention and
cross-attention to the encoder output; the output projection is tied to the token embeddings.
Attention projections: k_proj has no bias; queries are scaled before the product, as the
reference does. Matches transformers' `modeling_whisper` numerically.
Differs: head masks (encoder, decoder, cross) and encoder head pruning are kept; SpecAugment
(training only, `apply_spec_augment`) draws its random spans with torch, not NumPy, and leaves
the caller's features unchanged; `scale_embedding` has no effect, as in the reference.
Short-form `generate` (language/task prompt, timestamp rules) lives in `generation.py`.
Shapes: B batch, F mel bins, N frames, S encoder positions, T decoder tokens, H heads,
D head dim, C d_model, V vocabulary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InputError
from ...generation.mixin import GenerationMixin
from ...modeling.base import PreTrainedModel
from ...modeling.checks import check_token_inputs
from ...modeling.heads import shift_tokens_right, token_classification_loss
from ...modeling.init import init_module
from ...modeling.outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
)
from ...nn.activations import get_activation
from ...nn.attention import attention, layer_head_masks
from ...nn.cache import EncoderDecoderCache
from ...nn.linear import Linear
from ...nn.masks import causal_mask
from ...nn.pruning import heads_index, prune_linear
from .config import WhisperConfig


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """(length, channels) fixed positions of the encoder: sines then cosines of geometrically
    spaced frequencies, as in OpenAI's whisper."""
    step = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-step * torch.arange(channels // 2))
    angles = torch.arange(length).view(-1, 1) * inv.view(1, -1)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def span_mask(batch: int, length: int, prob: float, span: int, min_spans: int, device=None) -> torch.Tensor:
    """(batch, length) bool: per row, random spans of `span` positions, about `prob * length /
    span` of them (rounded at random, at least `min_spans`), as SpecAugment draws them."""
    if span > length:
        raise InputError(f"a SpecAugment span of {span} does not fit an axis of {length} (mask_*_length)")
    n = int(prob * length / span + float(torch.rand(())))
    n = min(max(n, min_spans), length // span, length - span + 1)
    mask = torch.zeros(batch, length, dtype=torch.bool, device=device)
    if n > 0:
        starts = torch.stack([torch.randperm(length - span + 1, device=device)[:n] for _ in range(batch)])
        mask.scatter_(1, (starts[..., None] + torch.arange(span, device=device)).view(batch, -1), True)
    return mask


def spec_augment(features: torch.Tensor, config: WhisperConfig) -> torch.Tensor:
    """SpecAugment (arXiv:1904.08779) in training: zero random spans of frames (all mel bins)
    and of mel bins (all frames). Random draws differ from the reference's NumPy ones."""
    B, bins, frames = features.shape
    if config.mask_time_prob > 0:
        t = span_mask(B, frames, config.mask_time_prob, config.mask_time_length, config.mask_time_min_masks,
                      features.device)
        features = features.masked_fill(t[:, None, :], 0.0)
    if config.mask_feature_prob > 0:
        f = span_mask(B, bins, config.mask_feature_prob, config.mask_feature_length, config.mask_feature_min_masks,
                      features.device)
        features = features.masked_fill(f[:, :, None], 0.0)
    return features


class SinusoidalPositions(nn.Embedding):
    """The encoder's position table: a frozen embedding initialised with `sinusoids`."""


class Attention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, dropout: float, layer_idx: int, causal: bool = False):
        super().__init__()
        self.layer_idx = layer_idx
        self.causal = causal  # decoder self-attention: a missing mask means plain causal masking
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.scaling = self.head_dim**-0.5
        self.dropout_p = dropout
        self.k_proj = Linear(d_model, d_model, bias=False)
        self.v_proj = Linear(d_model, d_model)
        self.q_proj = Linear(d_model, d_model)
        self.out_proj = Linear(d_model, d_model)
        self.pruned_heads: set[int] = set()
        self.kept_heads = list(range(num_heads))  # original numbers of the heads present

    def prune(self, heads) -> None:
        heads, index = heads_index(heads, self.num_heads, self.head_dim, self.pruned_heads)
        if not heads:
            return
        self.q_proj = prune_linear(self.q_proj, index)
        self.k_proj = prune_linear(self.k_proj, index)
        self.v_proj = prune_linear(self.v_proj, index)
        self.out_proj = prune_linear(self.out_proj, index, dim=1)
        self.pruned_heads |= heads
        self.kept_heads = [h for h in self.kept_heads if h not in heads]
        self.num_heads = len(self.kept_heads)

    def _heads(self, x: torch.Tensor, proj: nn.Linear) -> torch.Tensor:
        B, L, _ = x.shape
        return proj(x).view(B, L, -1, self.head_dim).transpose(1, 2)  # (B, H, L, D)

    def forward(self, x, mask=None, cache=None, head_mask=None, output_attentions=False, encoder_hidden=None):
        """Self-attention, or cross-attention to `encoder_hidden` (B, S, C) whose keys and
        values the cache keeps after the first call."""
        B, T, _ = x.shape
        # Queries are scaled before the product and the kernel is told not to scale again:
        # the reference's order of operations, which its logits depend on in float32.
        q = (self.q_proj(x) * self.scaling).view(B, T, -1, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        if encoder_hidden is None:
            k, v = self._heads(x, self.k_proj), self._heads(x, self.v_proj)
            if cache is not None:
                k, v = cache.update(self.layer_idx, k, v)  # (B, H, past + T, D)
        else:
            kv = cache.cross(self.layer_idx) if cache is not None else None
            if kv is None:
                kv = self._heads(encoder_hidden, self.k_proj), self._heads(encoder_hidden, self.v_proj)
                if cache is not None:
                    cache.set_cross(self.layer_idx, *kv)
            k, v = kv  # (B, H, S, D)
        if head_mask is not None and head_mask.shape[1] != self.num_heads:
            head_mask = head_mask[:, self.kept_heads]  # a full-size mask on a pruned layer
        out, weights = attention(q, k, v, mask, scale=1.0, head_mask=head_mask, need_weights=output_attentions,
                                 dropout=self.dropout_p if self.training else 0.0,
                                 is_causal=self.causal and mask is None and T > 1)
        out = out.transpose(1, 2).reshape(B, T, -1)  # (B, T, H*D)
        return self.out_proj(out), weights


class EncoderLayer(nn.Module):
    def __init__(self, config: WhisperConfig, layer_idx: int):
        super().__init__()
        C = config.d_model
        self.self_attn = Attention(C, config.encoder_attention_heads, config.attention_dropout, layer_idx)
        self.self_attn_layer_norm = nn.LayerNorm(C)
        self.fc1 = Linear(C, config.encoder_ffn_dim)
        self.fc2 = Linear(config.encoder_ffn_dim, C)
        self.final_layer_norm = nn.LayerNorm(C)
        self.act = get_activation(config.activation_function)
        self.dropout = config.dropout
        self.activation_dropout = config.activation_dropout

    def mlp(self, x):
        x = F.dropout(self.act(self.fc1(x)), self.activation_dropout, self.training)
        return F.dropout(self.fc2(x), self.dropout, self.training)

    def forward(self, x, head_mask, output_attentions):
        h, weights = self.self_attn(self.self_attn_layer_norm(x), head_mask=head_mask,
                                    output_attentions=output_attentions)
        x = x + F.dropout(h, self.dropout, self.training)
        x = x + self.mlp(self.final_layer_norm(x))
        if x.dtype == torch.float16:  # as the reference: keep half-precision activations finite
            limit = torch.finfo(x.dtype).max - 1000
            x = x.clamp(-limit, limit)
        return x, weights


class DecoderLayer(EncoderLayer):
    def __init__(self, config: WhisperConfig, layer_idx: int):
        nn.Module.__init__(self)
        C, H = config.d_model, config.decoder_attention_heads
        self.self_attn = Attention(C, H, config.attention_dropout, layer_idx, causal=True)
        self.self_attn_layer_norm = nn.LayerNorm(C)
        self.encoder_attn = Attention(C, H, config.attention_dropout, layer_idx)
        self.encoder_attn_layer_norm = nn.LayerNorm(C)
        self.fc1 = Linear(C, config.decoder_ffn_dim)
        self.fc2 = Linear(config.decoder_ffn_dim, C)
        self.final_layer_norm = nn.LayerNorm(C)
        self.act = get_activation(config.activation_function)
        self.dropout = config.dropout
        self.activation_dropout = config.activation_dropout

    def forward(self, x, mask, encoder_hidden, cache, head_mask, cross_head_mask, output_attentions):
        h, self_weights = self.self_attn(self.self_attn_layer_norm(x), mask, cache, head_mask, output_attentions)
        x = x + F.dropout(h, self.dropout, self.training)
        h, cross_weights = self.encoder_attn(self.encoder_attn_layer_norm(x), None, cache, cross_head_mask,
                                             output_attentions, encoder_hidden=encoder_hidden)
        x = x + F.dropout(h, self.dropout, self.training)
        return x + self.mlp(self.final_layer_norm(x)), self_weights, cross_weights


def _dropped(training: bool, layerdrop: float) -> bool:
    """LayerDrop (arXiv:1909.11556): skip a whole layer with probability `layerdrop` in training."""
    return training and layerdrop > 0.0 and bool(torch.rand([]) < layerdrop)


class WhisperEncoder(nn.Module):
    def __init__(self, config: WhisperConfig):
        super().__init__()
        self.config = config
        C = config.d_model
        self.conv1 = nn.Conv1d(config.num_mel_bins, C, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(C, C, kernel_size=3, stride=2, padding=1)
        self.embed_positions = SinusoidalPositions(config.max_source_positions, C)
        self.embed_positions.requires_grad_(False)
        self.layers = nn.ModuleList(EncoderLayer(config, i) for i in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(C)

    def _check(self, input_features) -> None:
        cfg = self.config
        if not isinstance(input_features, torch.Tensor) or input_features.dim() != 3:
            shape = tuple(getattr(input_features, "shape", ()))
            raise InputError(f"input_features must be log-mel features of shape (batch, num_mel_bins="
                             f"{cfg.num_mel_bins}, frames={cfg.num_frames}), found {shape}")
        _, bins, frames = input_features.shape
        if bins != cfg.num_mel_bins or frames != cfg.num_frames:
            raise InputError(
                f"input_features must have num_mel_bins={cfg.num_mel_bins} and {cfg.num_frames} frames "
                f"(2 * max_source_positions={cfg.max_source_positions}), found {bins} mel bins and {frames} "
                f"frames; pad or cut the audio to 30 s with the feature extractor")

    def forward(self, input_features=None, attention_mask=None, head_mask=None, output_attentions=False,
                output_hidden_states=False, return_dict=True) -> BaseModelOutput:
        """Encode (B, F, N) log-mel features; `attention_mask` is accepted and ignored, as in the
        reference (the model learned to ignore the silence padding)."""
        self._check(input_features)
        x = F.gelu(self.conv1(input_features))
        x = F.gelu(self.conv2(x)).permute(0, 2, 1)  # (B, S, C)
        x = F.dropout(x + self.embed_positions.weight, self.config.dropout, self.training)
        head_masks = layer_head_masks(head_mask, len(self.layers), self.config.encoder_attention_heads, x.dtype)
        hidden, attns = [x], []
        for layer, hm in zip(self.layers, head_masks):
            if _dropped(self.training, self.config.encoder_layerdrop):
                weights = None
            else:
                x, weights = layer(x, hm, output_attentions)
            hidden.append(x)
            attns.append(weights)
        x = self.layer_norm(x)
        hidden[-1] = x  # the last hidden state is the normed one, as in the reference
        out = BaseModelOutput(last_hidden_state=x, hidden_states=tuple(hidden) if output_hidden_states else None,
                              attentions=tuple(attns) if output_attentions else None)
        return out if return_dict is not False else out.to_tuple()


class WhisperDecoder(nn.Module):
    def __init__(self, config: WhisperConfig):
        super().__init__()
        self.config = config
        C = config.d_model
        self.embed_tokens = nn.Embedding(config.vocab_size, C, config.pad_token_id)
        self.embed_positions = nn.Embedding(config.max_target_positions, C)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.decoder_layers))
        self.layer_norm = nn.LayerNorm(C)

    def forward(self, input_ids=None, attention_mask=None, encoder_hidden_states=None, past_key_values=None,
                inputs_embeds=None, position_ids=None, head_mask=None, cross_attn_head_mask=None, use_cache=None,
                output_attentions=False, output_hidden_states=False,
                return_dict=True) -> BaseModelOutputWithPastAndCrossAttentions:
        cfg = self.config
        cache = past_key_values
        if cache is None and use_cache:
            cache = EncoderDecoderCache()
        if cache is not None and not isinstance(cache, EncoderDecoderCache):
            raise InputError(f"past_key_values of Whisper's decoder must be an EncoderDecoderCache, found "
                             f"{type(cache).__name__}")
        if encoder_hidden_states is None:
            raise InputError("Whisper's decoder needs the encoder output (input_features or encoder_outputs)")
        past = 0 if cache is None else int(cache.get_seq_length())
        check_token_inputs(input_ids, inputs_embeds, self.embed_tokens.num_embeddings,
                           max_positions=cfg.max_target_positions, limit_name="max_target_positions", past=past)
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, C)
        B, T = x.shape[:2]
        if position_ids is None:  # the decoder input is never left-padded: positions count from the cache
            position_ids = torch.arange(past, past + T, device=x.device).unsqueeze(0)
        x = F.dropout(x + self.embed_positions(position_ids), cfg.dropout, self.training)
        mask = causal_mask(attention_mask, past, T, past + T, x.dtype, x.device)  # None: plain causal
        L, H = cfg.decoder_layers, cfg.decoder_attention_heads
        head_masks = layer_head_masks(head_mask, L, H, x.dtype)
        cross_masks = layer_head_masks(cross_attn_head_mask, L, H, x.dtype)
        hidden, attns, cross = [x], [], []
        for layer, hm, cm in zip(self.layers, head_masks, cross_masks):
            if _dropped(self.training, cfg.decoder_layerdrop):
                self_w = cross_w = None
            else:
                x, self_w, cross_w = layer(x, mask, encoder_hidden_states, cache, hm, cm, output_attentions)
            hidden.append(x)
            attns.append(self_w)
            cross.append(cross_w)
        x = self.layer_norm(x)
        hidden[-1] = x
        out = BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=x, past_key_values=cache if use_cache or past_key_values is not None else None,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attns) if output_attentions else None,
            cross_attentions=tuple(cross) if output_attentions else None,
        )
        return out if return_dict is not False else out.to_tuple()


class WhisperPreTrainedModel(PreTrainedModel):
    config_class = WhisperConfig
    base_model_prefix = "model"
    main_input_name = "input_features"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, SinusoidalPositions):
            module.weight.copy_(sinusoids(*module.weight.shape))
        elif isinstance(module, nn.Conv1d):
            module.weight.normal_(0.0, self.config.init_std)
            if module.bias is not None:
                module.bias.zero_()
        else:  # Whisper calls its initializer_range init_std
            init_module(module, self.config.init_std)

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Decoder inputs for `labels` (DataCollatorForSeq2Seq calls it)."""
        return shift_tokens_right(labels, self.config)


class WhisperModel(WhisperPreTrainedModel):
    def __init__(self, config: WhisperConfig):
        super().__init__(config)
        self.encoder = WhisperEncoder(config)
        self.decoder = WhisperDecoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.decoder.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.decoder.embed_tokens = value

    def get_encoder(self) -> WhisperEncoder:
        return self.encoder

    def get_decoder(self) -> WhisperDecoder:
        return self.decoder

    def freeze_encoder(self) -> None:
        """Stop gradients to the encoder (fine-tune the decoder only)."""
        self.encoder.requires_grad_(False)

    def _prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        """Pruning removes heads of the encoder's self-attention ({encoder layer: heads})."""
        for layer, heads in heads_to_prune.items():
            if not 0 <= layer < len(self.encoder.layers):
                raise InputError(f"prune_heads: encoder layer {layer} does not exist "
                                 f"(encoder_layers={len(self.encoder.layers)})")
            self.encoder.layers[layer].self_attn.prune(heads)

    def forward(self, input_features=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                head_mask=None, decoder_head_mask=None, cross_attn_head_mask=None, encoder_outputs=None,
                past_key_values=None, decoder_inputs_embeds=None, decoder_position_ids=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=True) -> Seq2SeqModelOutput:
        """`encoder_outputs` (a BaseModelOutput or a tuple whose first item is the hidden
        states) skips the encoder; `past_key_values` is an EncoderDecoderCache."""
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        if encoder_outputs is None:
            if input_features is None:
                raise InputError("pass input_features (log-mel features) or encoder_outputs")
            if self.training and cfg.apply_spec_augment:
                input_features = spec_augment(input_features, cfg)
            encoder_outputs = self.encoder(input_features, attention_mask, head_mask, output_attentions,
                                           output_hidden_states, return_dict=True)
        elif not isinstance(encoder_outputs, BaseModelOutput):
            items = tuple(encoder_outputs) + (None, None)
            encoder_outputs = BaseModelOutput(last_hidden_state=items[0], hidden_states=items[1],
                                              attentions=items[2])
        dec = self.decoder(decoder_input_ids, decoder_attention_mask, encoder_outputs.last_hidden_state,
                           past_key_values, decoder_inputs_embeds, decoder_position_ids, decoder_head_mask,
                           cross_attn_head_mask, use_cache, output_attentions, output_hidden_states, return_dict=True)
        out = Seq2SeqModelOutput(
            last_hidden_state=dec.last_hidden_state, past_key_values=dec.past_key_values,
            decoder_hidden_states=dec.hidden_states, decoder_attentions=dec.attentions,
            cross_attentions=dec.cross_attentions, encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states, encoder_attentions=encoder_outputs.attentions,
        )
        return out if return_dict is not False else out.to_tuple()


# -- heads ----------------------------------------------------------------------------------

class WhisperForConditionalGeneration(GenerationMixin, WhisperPreTrainedModel):
    """Speech recognition and translation: the decoder's states projected onto the vocabulary
    (`proj_out`, tied to the token embeddings)."""

    TIED_WEIGHTS = {"proj_out.weight": "model.decoder.embed_tokens.weight"}

    def __init__(self, config: WhisperConfig):
        super().__init__(config)
        self.model = WhisperModel(config)
        self.proj_out = Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.proj_out

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.proj_out = value

    def get_encoder(self) -> WhisperEncoder:
        return self.model.encoder

    def get_decoder(self) -> WhisperDecoder:
        return self.model.decoder

    def freeze_encoder(self) -> None:
        self.model.freeze_encoder()

    def forward(self, input_features=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                head_mask=None, decoder_head_mask=None, cross_attn_head_mask=None, encoder_outputs=None,
                past_key_values=None, decoder_inputs_embeds=None, decoder_position_ids=None, labels=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=True,
                logits_to_keep: int = 0) -> Seq2SeqLMOutput:
        """`labels` (B, T) give the loss (cross-entropy, -100 ignored) and, when no decoder input
        is given, the decoder input (labels shifted right after decoder_start_token_id).
        `logits_to_keep=k` computes logits for the last k positions only (0: all)."""
        if labels is not None:
            if labels.shape[1] > self.config.max_target_positions:
                raise InputError(f"labels have {labels.shape[1]} tokens; Whisper's decoder takes at most "
                                 f"max_target_positions={self.config.max_target_positions}")
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = shift_tokens_right(labels, self.config)
        base = self.model(input_features, attention_mask, decoder_input_ids, decoder_attention_mask, head_mask,
                          decoder_head_mask, cross_attn_head_mask, encoder_outputs, past_key_values,
                          decoder_inputs_embeds, decoder_position_ids, use_cache, output_attentions,
                          output_hidden_states, return_dict=True)
        x = base.last_hidden_state
        logits = self.proj_out(x[:, -logits_to_keep:] if logits_to_keep else x)  # (B, T, V)
        loss = None
        if labels is not None:
            loss = token_classification_loss(logits, labels.to(logits.device), logits.shape[-1])
        out = Seq2SeqLMOutput(
            loss=loss, logits=logits, past_key_values=base.past_key_values,
            decoder_hidden_states=base.decoder_hidden_states, decoder_attentions=base.decoder_attentions,
            cross_attentions=base.cross_attentions, encoder_last_hidden_state=base.encoder_last_hidden_state,
            encoder_hidden_states=base.encoder_hidden_states, encoder_attentions=base.encoder_attentions,
        )
        return out if return_dict is not False else out.to_tuple()

    def generate(self, input_features=None, generation_config=None, *, language=None, task=None,
                 return_timestamps=None, is_multilingual=None, **kwargs):
        """Transcribe (or translate) up to 30 s of audio: builds the decoder prompt
        `<|startoftranscript|> <|lang|> <|task|> [<|notimestamps|>]` from the generation config
        (`lang_to_id`, `task_to_id`, `no_timestamps_token_id`), adds Whisper's token rules, and
        decodes with the shared `GenerationMixin.generate` (greedy, sampling or beam search).

        `language` ("en", "english", "<|en|>", or one per batch row) and `task` ("transcribe" /
        "translate") need a multilingual generation config; without a language the model
        detects it. Returns the generated tokens after the prompt, end-of-sequence removed,
        rows right-padded with pad_token_id, as transformers does for short-form audio.
        """
        from .generation import whisper_generate

        return whisper_generate(self, super().generate, input_features, generation_config, language=language,
                                task=task, return_timestamps=return_timestamps, is_multilingual=is_multilingual,
                                **kwargs)


__all__ = ["WhisperModel", "WhisperForConditionalGeneration", "WhisperPreTrainedModel", "WhisperEncoder",
           "WhisperDecoder"]
