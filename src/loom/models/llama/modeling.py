"""Llama (arXiv:2302.13971, 2307.09288), also the architecture of Mistral and Qwen2 checkpoints.

Pre-norm decoder: RMSNorm, rotary positions (default, linear, dynamic NTK, llama3, YaRN),
grouped-query attention, SwiGLU MLP. Matches transformers' `modeling_llama`,
`modeling_mistral` (sliding-window attention) and `modeling_qwen2` (q/k/v bias, windowed
layers from `max_window_layers`) numerically. Differs: positions come from the attention
mask when none are given (left padding needs no caller work); head masks and pruning are kept
(pruning removes whole key/value groups: every query head that shares the group must go).
Shapes: B batch, T tokens, S key slots, H query heads, K key/value heads, D head dim,
C hidden size, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import InputError
from ...generation.mixin import GenerationMixin
from ...modeling.base import PreTrainedModel
from ...modeling.checks import check_token_inputs
from ...modeling.heads import causal_lm_loss, last_token_index, sequence_classification_loss
from ...modeling.outputs import BaseModelOutputWithPast, CausalLMOutputWithPast, SequenceClassifierOutput
from ...nn.activations import get_activation
from ...nn.attention import attention, layer_head_masks
from ...nn.cache import DynamicCache
from ...nn.linear import Linear
from ...nn.masks import decoder_positions_and_masks
from ...nn.norms import RMSNorm
from ...nn.pruning import heads_index, prune_linear
from ...nn.rope import RotaryEmbedding, apply_rotary
from .config import LlamaConfig


class Attention(nn.Module):
    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.head_dim = D = config.head_dim
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.n_rep = config.num_key_value_groups
        self.dropout_p = config.attention_dropout
        qkv_bias = config.has_qkv_bias
        self.q_proj = Linear(config.hidden_size, self.num_heads * D, bias=qkv_bias)
        self.k_proj = Linear(config.hidden_size, self.num_kv_heads * D, bias=qkv_bias)
        self.v_proj = Linear(config.hidden_size, self.num_kv_heads * D, bias=qkv_bias)
        self.o_proj = Linear(self.num_heads * D, config.hidden_size, bias=config.attention_bias)
        self.pruned_heads: set[int] = set()
        self.kept_heads = list(range(self.num_heads))  # original numbers of the heads present

    def prune(self, heads) -> None:
        """Remove query heads; a key/value head goes with its whole group of n_rep query heads."""
        heads = {int(h) for h in heads} - self.pruned_heads
        groups = {h // self.n_rep for h in heads}
        for g in sorted(groups):
            members = set(range(g * self.n_rep, (g + 1) * self.n_rep))
            if not members <= heads | self.pruned_heads:
                raise InputError(
                    f"layer {self.layer_idx}: heads {sorted(members)} share key/value head {g}; "
                    f"prune all of them or none (asked for {sorted(heads & members)})"
                )
        if not heads:
            return
        D = self.head_dim
        heads, q_index = heads_index(heads, self.num_heads, D, self.pruned_heads)
        pruned_groups = {h // self.n_rep for h in self.pruned_heads}
        _, kv_index = heads_index(groups, self.num_kv_heads, D, pruned_groups)
        self.q_proj = prune_linear(self.q_proj, q_index)
        self.k_proj = prune_linear(self.k_proj, kv_index)
        self.v_proj = prune_linear(self.v_proj, kv_index)
        self.o_proj = prune_linear(self.o_proj, q_index, dim=1)
        self.pruned_heads |= heads
        self.kept_heads = [h for h in self.kept_heads if h not in heads]
        self.num_heads = len(self.kept_heads)
        self.num_kv_heads = self.num_heads // self.n_rep

    def forward(self, x, cos, sin, mask, cache, head_mask, output_attentions):
        B, T, _ = x.shape
        D = self.head_dim
        q = self.q_proj(x).view(B, T, -1, D).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, -1, D).transpose(1, 2)  # (B, K, T, D)
        v = self.v_proj(x).view(B, T, -1, D).transpose(1, 2)
        q, k = apply_rotary(q, k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # (B, K, S, D)
        if head_mask is not None and head_mask.shape[1] != self.num_heads:
            head_mask = head_mask[:, self.kept_heads]  # a full-size mask on a pruned layer
        out, weights = attention(
            q, k, v, mask, scale=D**-0.5, head_mask=head_mask, need_weights=output_attentions,
            dropout=self.dropout_p if self.training else 0.0, is_causal=mask is None and T > 1,
        )
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1)), weights  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, config: LlamaConfig):
        super().__init__()
        C, F, bias = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate_proj = Linear(C, F, bias=bias)
        self.up_proj = Linear(C, F, bias=bias)
        self.down_proj = Linear(F, C, bias=bias)
        self.act = get_activation(config.hidden_act)

    def forward(self, x):
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))  # SwiGLU


class DecoderLayer(nn.Module):
    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        self.self_attn = Attention(config, layer_idx)
        self.mlp = MLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, x, cos, sin, mask, cache, head_mask, output_attentions):
        h, weights = self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, head_mask, output_attentions)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), weights


class LlamaPreTrainedModel(PreTrainedModel):
    config_class = LlamaConfig
    base_model_prefix = "model"
    # Old checkpoints saved the rotary frequencies; they are recomputed from the config.
    IGNORE_UNEXPECTED = [r"rotary_emb\.inv_freq$"]

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, RotaryEmbedding):
            module.reset_frequencies()
        else:
            super()._init_weights(module)


class LlamaModel(LlamaPreTrainedModel):
    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config.rope, config.head_dim, config.max_position_embeddings)
        self.windows = config.attention_windows  # per layer: sliding window or None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def _prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        for layer, heads in heads_to_prune.items():
            self.layers[layer].self_attn.prune(heads)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values=None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithPast:
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        check_token_inputs(input_ids, inputs_embeds, self.embed_tokens.num_embeddings)
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, C)
        cache = past_key_values
        if cache is None and use_cache:
            cache = DynamicCache()
        position_ids, masks = decoder_positions_and_masks(
            attention_mask, position_ids, cache, x.shape[1], x.dtype, x.device, self.windows)
        cos, sin = self.rotary_emb(position_ids, x.dtype)  # (B, T, D) each
        head_masks = layer_head_masks(head_mask, cfg.num_hidden_layers, cfg.num_attention_heads, x.dtype)
        hidden, attns = [x], []
        for layer, window, hm in zip(self.layers, self.windows, head_masks):
            x, weights = layer(x, cos, sin, masks[window], cache, hm, output_attentions)
            hidden.append(x)
            attns.append(weights)
        x = self.norm(x)
        hidden[-1] = x  # the last hidden state is the normed one, as in the reference
        out = BaseModelOutputWithPast(
            last_hidden_state=x,
            past_key_values=cache if use_cache or past_key_values is not None else None,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attns) if output_attentions else None,
        )
        return out if return_dict is not False else out.to_tuple()




# -- heads ----------------------------------------------------------------------------------

class LlamaForCausalLM(GenerationMixin, LlamaPreTrainedModel):
    TIED_WEIGHTS = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.lm_head = Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, head_mask=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, logits_to_keep: int = 0) -> CausalLMOutputWithPast:
        """`logits_to_keep=n` computes logits for the last n positions only (0: all)."""
        base = self.model(input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache,
                          head_mask, output_attentions, output_hidden_states, return_dict=True)
        x = base.last_hidden_state
        logits = self.lm_head(x[:, -logits_to_keep:] if logits_to_keep else x)  # (B, T, V)
        loss = None if labels is None else causal_lm_loss(logits, labels)
        out = CausalLMOutputWithPast(loss, logits, base.past_key_values, base.hidden_states, base.attentions)
        return out if return_dict is not False else out.to_tuple()


class LlamaForSequenceClassification(LlamaPreTrainedModel):
    """Classifies from the hidden state of each row's last real token."""

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, head_mask=None, output_attentions=None,
                output_hidden_states=None, return_dict=None) -> SequenceClassifierOutput:
        base = self.model(input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache,
                          head_mask, output_attentions, output_hidden_states, return_dict=True)
        logits = self.score(base.last_hidden_state)  # (B, T, num_labels)
        B = logits.shape[0]
        last = last_token_index(input_ids, attention_mask, self.config.pad_token_id, B)
        pooled = logits[torch.arange(B, device=logits.device), last]  # (B, num_labels)
        loss = None if labels is None else sequence_classification_loss(pooled, labels, self.config)
        out = SequenceClassifierOutput(loss, pooled, base.hidden_states, base.attentions)
        return out if return_dict is not False else out.to_tuple()


__all__ = ["LlamaModel", "LlamaForCausalLM", "LlamaForSequenceClassification", "LlamaPreTrainedModel"]
