"""T5 (arXiv:1910.10683), also T5 v1.1, FLAN-T5 and the other checkpoints of `model_type` "t5".

Encoder-decoder of pre-norm blocks: RMS layer norm without bias, relative position buckets
(computed by the first block of each stack, bidirectional in the encoder and causal in the
decoder, shared by the later blocks), no 1/sqrt(d) scaling of the scores, ReLU (T5) or gated
GELU (v1.1) feed-forward. Matches transformers' `modeling_t5` numerically.
Differs: `num_decoder_layers != num_layers` works with a cache (the reference raises
IndexError in its cache); head masks and pruning are kept (pruning removes encoder
self-attention heads, as transformers 4 did); the decoder's untied LM head is kept apart only
when the checkpoint holds one of its own (see `T5ForConditionalGeneration.tie_weights`).
Shapes: B batch, T query tokens, S key slots, H heads, D d_kv, C d_model, V vocabulary.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from ...errors import InputError
from ...generation.mixin import GenerationMixin
from ...modeling.base import PreTrainedModel
from ...modeling.checks import check_token_inputs
from ...modeling.heads import shift_tokens_right, token_classification_loss
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
from ...nn.masks import causal_mask, padding_mask
from ...nn.norms import RMSNorm
from ...nn.pruning import heads_index, prune_linear
from .config import T5Config

logger = logging.getLogger(__name__)


def relative_position_bucket(relative_position: torch.Tensor, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> torch.Tensor:
    """Bucket of each key-minus-query distance, as Mesh TensorFlow's T5: exact buckets for
    small distances, logarithmically wider ones up to `max_distance`, one bucket beyond.
    Bidirectional: half the buckets for keys after the query. Causal: keys after the query
    fall into bucket 0 (they are masked anyway)."""
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)
    max_exact = num_buckets // 2
    log_ratio = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (num_buckets - max_exact)).long()  # truncation, as the original
    large = large.clamp(max=num_buckets - 1)
    return buckets + torch.where(distance < max_exact, distance, large)


class Attention(nn.Module):
    """Self-attention (with a cache in the decoder) or cross-attention over the encoder output."""

    def __init__(self, config: T5Config, layer_idx: int, has_relative_attention_bias: bool = False,
                 bidirectional: bool = True):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads, self.head_dim = config.num_heads, config.d_kv
        self.bidirectional = bidirectional
        self.dropout_p = config.dropout_rate
        C, inner = config.d_model, config.num_heads * config.d_kv
        self.q = Linear(C, inner, bias=False)
        self.k = Linear(C, inner, bias=False)
        self.v = Linear(C, inner, bias=False)
        self.o = Linear(inner, C, bias=False)
        # No 1/sqrt(D) on the scores: the original initialises q smaller instead.
        self.q.init_std = (C * config.d_kv) ** -0.5
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(config.relative_attention_num_buckets, config.num_heads)
            self.relative_attention_bias.init_std = C**-0.5
            self.num_buckets = config.relative_attention_num_buckets
            self.max_distance = config.relative_attention_max_distance
        self.pruned_heads: set[int] = set()
        self.kept_heads = list(range(self.num_heads))  # original numbers of the heads present

    def compute_bias(self, T: int, S: int, past, device) -> torch.Tensor:
        """(1, H_all, T, S) position bias for queries at slots past..past+T-1 and keys 0..S-1;
        every original head, pruned ones included (later blocks pick their own)."""
        query = torch.arange(T, dtype=torch.long, device=device)[:, None] + past
        key = torch.arange(S, dtype=torch.long, device=device)[None, :]
        buckets = relative_position_bucket(key - query, self.bidirectional, self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)  # (1, H, T, S)

    def prune(self, heads) -> None:
        heads, index = heads_index(heads, self.num_heads, self.head_dim, self.pruned_heads)
        if not heads:
            return
        self.q, self.k, self.v = (prune_linear(lin, index) for lin in (self.q, self.k, self.v))
        self.o = prune_linear(self.o, index, dim=1)
        self.pruned_heads |= heads
        self.kept_heads = [h for h in self.kept_heads if h not in heads]
        self.num_heads = len(self.kept_heads)

    def _keys_values(self, x, cache, encoder_states):
        B, D = x.shape[0], self.head_dim
        if encoder_states is None:  # self-attention: this forward's tokens, then the cached ones
            k = self.k(x).view(B, -1, self.num_heads, D).transpose(1, 2)  # (B, H, T, D)
            v = self.v(x).view(B, -1, self.num_heads, D).transpose(1, 2)
            return cache.update(self.layer_idx, k, v) if cache is not None else (k, v)  # (B, H, S, D)
        kv = cache.cross(self.layer_idx) if cache is not None else None
        if kv is None:  # cross-attention: computed once from the encoder output
            kv = tuple(lin(encoder_states).view(B, -1, self.num_heads, D).transpose(1, 2) for lin in (self.k, self.v))
            if cache is not None:
                cache.set_cross(self.layer_idx, *kv)
        return kv

    def forward(self, x, bias, cache=None, encoder_states=None, head_mask=None, output_attentions=False):
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k, v = self._keys_values(x, cache, encoder_states)
        if bias is not None and bias.shape[1] not in (1, self.num_heads):
            bias = bias[:, self.kept_heads]  # the shared bias holds every original head
        if head_mask is not None and head_mask.shape[1] != self.num_heads:
            head_mask = head_mask[:, self.kept_heads]  # a full-size mask on a pruned layer
        out, weights = attention(q, k, v, bias, scale=1.0, head_mask=head_mask, need_weights=output_attentions,
                                 dropout=self.dropout_p if self.training else 0.0)
        return self.o(out.transpose(1, 2).reshape(B, T, -1)), weights  # (B, T, C)


class DenseActDense(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        self.wi = Linear(config.d_model, config.d_ff, bias=False)
        self.wo = Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.act = get_activation(config.dense_act_fn)

    def forward(self, x):
        return self.wo(self.dropout(self.act(self.wi(x))))


class DenseGatedActDense(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        self.wi_0 = Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = Linear(config.d_model, config.d_ff, bias=False)
        self.wo = Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.act = get_activation(config.dense_act_fn)

    def forward(self, x):
        return self.wo(self.dropout(self.act(self.wi_0(x)) * self.wi_1(x)))


class LayerFF(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        self.DenseReluDense = DenseGatedActDense(config) if config.is_gated_act else DenseActDense(config)
        self.layer_norm = RMSNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x):
        return x + self.dropout(self.DenseReluDense(self.layer_norm(x)))


class LayerSelfAttention(nn.Module):
    def __init__(self, config: T5Config, layer_idx: int, has_relative_attention_bias: bool, is_decoder: bool):
        super().__init__()
        self.SelfAttention = Attention(config, layer_idx, has_relative_attention_bias, bidirectional=not is_decoder)
        self.layer_norm = RMSNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x, bias, cache, head_mask, output_attentions):
        h, weights = self.SelfAttention(self.layer_norm(x), bias, cache, None, head_mask, output_attentions)
        return x + self.dropout(h), weights


class LayerCrossAttention(nn.Module):
    def __init__(self, config: T5Config, layer_idx: int):
        super().__init__()
        self.EncDecAttention = Attention(config, layer_idx)
        self.layer_norm = RMSNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x, encoder_states, bias, cache, head_mask, output_attentions):
        h, weights = self.EncDecAttention(self.layer_norm(x), bias, cache, encoder_states, head_mask, output_attentions)
        return x + self.dropout(h), weights


def _clamp_fp16(x: torch.Tensor) -> torch.Tensor:
    # T5 activations overflow float16; the reference clamps them to finite values after each part.
    if x.dtype != torch.float16:
        return x
    limit = torch.finfo(x.dtype).max - (1000 if bool(torch.isinf(x).any()) else 0)
    return x.clamp(-limit, limit)


class Block(nn.Module):
    """layer.0 self-attention, (decoder) layer.1 cross-attention, then the feed-forward."""

    def __init__(self, config: T5Config, layer_idx: int, is_decoder: bool):
        super().__init__()
        self.is_decoder = is_decoder
        self.layer = nn.ModuleList([LayerSelfAttention(config, layer_idx, layer_idx == 0, is_decoder)])
        if is_decoder:
            self.layer.append(LayerCrossAttention(config, layer_idx))
        self.layer.append(LayerFF(config))

    def forward(self, x, bias, cache, head_mask, output_attentions, encoder_states=None, cross_bias=None,
                cross_head_mask=None):
        x, weights = self.layer[0](x, bias, cache, head_mask, output_attentions)
        x, cross_weights = _clamp_fp16(x), None
        if self.is_decoder:
            x, cross_weights = self.layer[1](x, encoder_states, cross_bias, cache, cross_head_mask, output_attentions)
            x = _clamp_fp16(x)
        return _clamp_fp16(self.layer[-1](x)), weights, cross_weights


class T5Stack(nn.Module):
    """The encoder (`is_decoder=False`) or the decoder: embeddings, blocks, final norm."""

    def __init__(self, config: T5Config, is_decoder: bool):
        super().__init__()
        self.config, self.is_decoder = config, is_decoder
        n = config.num_decoder_layers if is_decoder else config.num_layers
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)  # tied to `shared`
        self.block = nn.ModuleList(Block(config, i, is_decoder) for i in range(n))
        self.final_layer_norm = RMSNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def _self_bias(self, attention_mask, cache, B, T, dtype, device) -> torch.Tensor:
        """Position bias of block 0 plus the padding (encoder) or causal (decoder) mask."""
        past = cache.get_seq_length() if cache is not None else 0
        S = cache.max_cache_len if cache is not None and cache.max_cache_len else past + T
        if attention_mask is not None:
            attention_mask = torch.as_tensor(attention_mask, device=device)
            lo, hi = (past + T, S) if self.is_decoder else (T, T)
            what = "decoder_attention_mask" if self.is_decoder else "attention_mask"
            if attention_mask.dim() != 2 or attention_mask.shape[0] != B or not lo <= attention_mask.shape[1] <= hi:
                cached = f" ({int(past)} cached + {T} new)" if self.is_decoder and past else ""
                raise InputError(f"{what} must have shape ({B}, {lo}){cached}, found {tuple(attention_mask.shape)}")
        bias = self.block[0].layer[0].SelfAttention.compute_bias(T, S, past, device).to(dtype)  # (1, H, T, S)
        if not self.is_decoder:
            mask = padding_mask(attention_mask, dtype)  # (B, 1, 1, S) or None
        else:
            mask = causal_mask(attention_mask, past, T, S, dtype, device)
            if mask is None and T > 1:  # no padding and no past: plain causal
                mask = torch.full((T, S), torch.finfo(dtype).min, dtype=dtype, device=device).triu(1)
        return bias if mask is None else bias + mask

    def _cross_bias(self, encoder_states, encoder_attention_mask, B, dtype) -> torch.Tensor | None:
        if encoder_states is None:
            raise InputError("the decoder needs encoder_hidden_states (the encoder's output)")
        if encoder_states.dim() != 3 or encoder_states.shape[0] != B:
            raise InputError(f"encoder hidden states must have shape ({B}, tokens, {self.config.d_model}), "
                             f"found {tuple(encoder_states.shape)}")
        S = encoder_states.shape[1]
        if encoder_attention_mask is None:
            return None
        if tuple(encoder_attention_mask.shape) != (B, S):
            raise InputError(f"attention_mask must have the encoder input's shape ({B}, {S}), "
                             f"found {tuple(encoder_attention_mask.shape)}")
        return padding_mask(encoder_attention_mask.to(encoder_states.device), dtype)  # (B, 1, 1, S)

    def forward(self, input_ids=None, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                inputs_embeds=None, head_mask=None, cross_attn_head_mask=None, past_key_values=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=True):
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        check_token_inputs(input_ids, inputs_embeds, self.embed_tokens.num_embeddings)
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, C)
        B, T = x.shape[:2]
        cache = self._cache(past_key_values, use_cache)
        bias = self._self_bias(attention_mask, cache, B, T, x.dtype, x.device)
        cross_bias = self._cross_bias(encoder_hidden_states, encoder_attention_mask, B, x.dtype) \
            if self.is_decoder else None
        L = len(self.block)
        head_masks = layer_head_masks(head_mask, L, cfg.num_heads, x.dtype)
        cross_masks = layer_head_masks(cross_attn_head_mask, L, cfg.num_heads, x.dtype)
        x = self.dropout(x)
        hidden, attns, cross = [x], [], []
        for block, hm, chm in zip(self.block, head_masks, cross_masks):
            x, weights, cross_weights = block(x, bias, cache, hm, output_attentions, encoder_hidden_states,
                                              cross_bias, chm)
            hidden.append(x)
            attns.append(weights)
            cross.append(cross_weights)
        x = self.dropout(self.final_layer_norm(x))
        hidden[-1] = x  # the last hidden state is the normed one, as in the reference
        hidden = tuple(hidden) if output_hidden_states else None
        attns = tuple(attns) if output_attentions else None
        if not self.is_decoder:
            out = BaseModelOutput(last_hidden_state=x, hidden_states=hidden, attentions=attns)
        else:
            out = BaseModelOutputWithPastAndCrossAttentions(
                last_hidden_state=x, past_key_values=cache if use_cache or past_key_values is not None else None,
                hidden_states=hidden, attentions=attns, cross_attentions=tuple(cross) if output_attentions else None)
        return out if return_dict is not False else out.to_tuple()

    def _cache(self, past_key_values, use_cache):
        if not self.is_decoder:
            if past_key_values is not None:
                raise InputError("the T5 encoder takes no past_key_values (only the decoder caches)")
            return None
        if past_key_values is not None and not isinstance(past_key_values, EncoderDecoderCache):
            raise InputError(f"past_key_values must be an EncoderDecoderCache (self- and cross-attention), "
                             f"found {type(past_key_values).__name__}")
        if past_key_values is None and use_cache:
            return EncoderDecoderCache()
        return past_key_values


class T5PreTrainedModel(PreTrainedModel):
    config_class = T5Config
    base_model_prefix = ""  # shared, encoder and decoder sit at the top of every T5 checkpoint
    main_input_name = "input_ids"
    # Only block 0 of a stack has a position bias; the decoder's cross-attention never used it.
    IGNORE_UNEXPECTED = [r"^decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight$"]
    TIED_WEIGHTS = {"encoder.embed_tokens.weight": "shared.weight", "decoder.embed_tokens.weight": "shared.weight"}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The original's: normal(0, factor * in_features**-0.5) for projections (q smaller,
        see Attention), normal(0, factor) for the vocabulary embedding, norms at factor."""
        factor = self.config.initializer_factor
        if isinstance(module, RMSNorm):
            module.weight.fill_(factor)
        elif isinstance(module, nn.Linear):
            module.weight.normal_(0.0, factor * getattr(module, "init_std", module.in_features**-0.5))
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, factor * getattr(module, "init_std", 1.0))

    def _tied_pairs(self):
        # The stacks always share `shared`; only the LM head follows tie_word_embeddings.
        return [(t, s) for t, s in self.TIED_WEIGHTS.items()
                if not t.startswith("lm_head.") or self.config.tie_word_embeddings]

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.shared = value
        for stack in (getattr(self, "encoder", None), getattr(self, "decoder", None)):
            if stack is not None:
                stack.embed_tokens = value

    def get_encoder(self) -> T5Stack:
        return self.encoder

    def _prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        """{encoder layer: [heads]}: encoder self-attention heads, as transformers 4 pruned."""
        for layer, heads in heads_to_prune.items():
            if not 0 <= layer < len(self.encoder.block):
                raise InputError(f"prune_heads: encoder layer {layer} does not exist "
                                 f"(num_layers={len(self.encoder.block)})")
            self.encoder.block[layer].layer[0].SelfAttention.prune(heads)

    def _run_encoder(self, input_ids, attention_mask, inputs_embeds, head_mask, encoder_outputs,
                output_attentions, output_hidden_states) -> BaseModelOutput:
        if encoder_outputs is None:
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                                head_mask=head_mask, output_attentions=output_attentions,
                                output_hidden_states=output_hidden_states, return_dict=True)
        if isinstance(encoder_outputs, BaseModelOutput):
            return encoder_outputs
        if isinstance(encoder_outputs, torch.Tensor) or not isinstance(encoder_outputs, (tuple, list)):
            raise InputError("encoder_outputs must be a BaseModelOutput or a tuple whose first item is the "
                             f"encoder's last hidden state, found {type(encoder_outputs).__name__}")
        n = len(encoder_outputs)
        return BaseModelOutput(last_hidden_state=encoder_outputs[0],
                               hidden_states=encoder_outputs[1] if n > 1 else None,
                               attentions=encoder_outputs[2] if n > 2 else None)

    def _run_decoder(self, enc: BaseModelOutput, attention_mask, decoder_input_ids, decoder_attention_mask,
                decoder_inputs_embeds, decoder_head_mask, cross_attn_head_mask, past_key_values, use_cache,
                output_attentions, output_hidden_states) -> BaseModelOutputWithPastAndCrossAttentions:
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            raise InputError(f"{type(self).__name__} needs decoder_input_ids (the target so far, starting with "
                             f"decoder_start_token_id={self.config.decoder_start_token_id}), or labels")
        return self.decoder(input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
                            encoder_hidden_states=enc.last_hidden_state, encoder_attention_mask=attention_mask,
                            inputs_embeds=decoder_inputs_embeds, head_mask=decoder_head_mask,
                            cross_attn_head_mask=cross_attn_head_mask, past_key_values=past_key_values,
                            use_cache=use_cache, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, return_dict=True)

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Decoder inputs for `labels` (DataCollatorForSeq2Seq calls it)."""
        return shift_tokens_right(labels, self.config)


class T5Model(T5PreTrainedModel):
    IGNORE_UNEXPECTED = [*T5PreTrainedModel.IGNORE_UNEXPECTED, r"^lm_head\."]

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, is_decoder=False)
        self.decoder = T5Stack(config, is_decoder=True)
        self.post_init()

    def get_decoder(self) -> T5Stack:
        return self.decoder

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                head_mask=None, decoder_head_mask=None, cross_attn_head_mask=None, encoder_outputs=None,
                past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=True) -> Seq2SeqModelOutput:
        enc = self._run_encoder(input_ids, attention_mask, inputs_embeds, head_mask, encoder_outputs, output_attentions,
                           output_hidden_states)
        dec = self._run_decoder(enc, attention_mask, decoder_input_ids, decoder_attention_mask, decoder_inputs_embeds,
                           decoder_head_mask, cross_attn_head_mask, past_key_values, use_cache, output_attentions,
                           output_hidden_states)
        out = Seq2SeqModelOutput(
            last_hidden_state=dec.last_hidden_state, past_key_values=dec.past_key_values,
            decoder_hidden_states=dec.hidden_states, decoder_attentions=dec.attentions,
            cross_attentions=dec.cross_attentions, encoder_last_hidden_state=enc.last_hidden_state,
            encoder_hidden_states=enc.hidden_states, encoder_attentions=enc.attentions)
        return out if return_dict is not False else out.to_tuple()


class T5ForConditionalGeneration(GenerationMixin, T5PreTrainedModel):
    TIED_WEIGHTS = {**T5PreTrainedModel.TIED_WEIGHTS, "lm_head.weight": "shared.weight"}

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, is_decoder=False)
        self.decoder = T5Stack(config, is_decoder=True)
        self.lm_head = Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.init_std = 1.0
        if config.tie_word_embeddings:  # tied from the start: only a load can hand it weights of its own
            self.lm_head.weight = self.shared.weight
        self.post_init()

    def get_decoder(self) -> T5Stack:
        return self.decoder

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def tie_weights(self) -> None:
        """As transformers 5 (which writes `tie_word_embeddings: true` for every T5, v1.1
        included): an LM head loaded with values that differ from `shared` stays apart, and
        `config.tie_word_embeddings` becomes False so that it stays so. (A head is a tensor of
        its own only after a load: the model is built tied, and resizing keeps it tied.)"""
        head, shared = self.lm_head.weight, self.shared.weight
        if (self.config.tie_word_embeddings and head is not shared and not head.is_meta and not shared.is_meta
                and head.shape == shared.shape and not torch.equal(head, shared)):
            logger.info("T5: lm_head.weight differs from shared.weight in the checkpoint; keeping them untied")
            self.config.tie_word_embeddings = False
        super().tie_weights()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                head_mask=None, decoder_head_mask=None, cross_attn_head_mask=None, encoder_outputs=None,
                past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=True,
                logits_to_keep: int = 0) -> Seq2SeqLMOutput:
        """`labels` (B, T_dec): decoder inputs are the labels shifted right when not given, and
        the loss is their cross-entropy (-100 ignored). `logits_to_keep=k` computes logits for
        the last k decoder positions only (0: all)."""
        if labels is not None and logits_to_keep:
            raise InputError("labels need the logits of every position; leave logits_to_keep at 0")
        enc = self._run_encoder(input_ids, attention_mask, inputs_embeds, head_mask, encoder_outputs, output_attentions,
                           output_hidden_states)
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = shift_tokens_right(labels, self.config)
        dec = self._run_decoder(enc, attention_mask, decoder_input_ids, decoder_attention_mask, decoder_inputs_embeds,
                           decoder_head_mask, cross_attn_head_mask, past_key_values, use_cache, output_attentions,
                           output_hidden_states)
        x = dec.last_hidden_state
        x = x[:, -logits_to_keep:] if logits_to_keep else x
        if self.config.scale_decoder_outputs:
            x = x * self.config.d_model**-0.5  # the original T5 rescales before its tied output layer
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if labels is not None:
            loss = token_classification_loss(logits, labels.to(logits.device), logits.shape[-1])
        out = Seq2SeqLMOutput(
            loss=loss, logits=logits, past_key_values=dec.past_key_values, decoder_hidden_states=dec.hidden_states,
            decoder_attentions=dec.attentions, cross_attentions=dec.cross_attentions,
            encoder_last_hidden_state=enc.last_hidden_state, encoder_hidden_states=enc.hidden_states,
            encoder_attentions=enc.attentions)
        return out if return_dict is not False else out.to_tuple()


class T5EncoderModel(T5PreTrainedModel):
    TIED_WEIGHTS = {"encoder.embed_tokens.weight": "shared.weight"}
    IGNORE_UNEXPECTED = [r"^decoder\.", r"^lm_head\."]  # a full T5 checkpoint loads too

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, is_decoder=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None,
                output_attentions=None, output_hidden_states=None, return_dict=True) -> BaseModelOutput:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                            head_mask=head_mask, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, return_dict=return_dict)


__all__ = ["T5Model", "T5ForConditionalGeneration", "T5EncoderModel", "T5PreTrainedModel"]
