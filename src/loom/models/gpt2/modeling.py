"""GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners").

Pre-norm decoder with learned absolute positions and GELU (tanh) MLPs. Matches transformers'
`modeling_gpt2` numerically. Its projections are `Conv1D`: a linear layer whose weight is
stored (in, out), transposed relative to `nn.Linear`; loom keeps that layout so checkpoints
load and save unchanged. Differs: positions come from the attention mask when none are given
(left padding needs no caller work); no cross-attention; head masks and pruning kept.
Shapes: B batch, T tokens, S key slots, H heads, D head dim, C hidden size, V vocabulary.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...generation.mixin import GenerationMixin
from ...modeling.base import PreTrainedModel
from ...modeling.checks import check_token_inputs
from ...modeling.heads import causal_lm_loss, last_token_index, sequence_classification_loss
from ...modeling.outputs import BaseModelOutputWithPast, CausalLMOutputWithPast, SequenceClassifierOutput
from ...nn.activations import get_activation
from ...nn.attention import attention, layer_head_masks
from ...nn.cache import DynamicCache
from ...nn.masks import decoder_positions_and_masks
from ...nn.linear import Linear
from ...nn.pruning import heads_index
from .config import GPT2Config


class Conv1D(nn.Module):
    """y = x @ weight + bias with weight (in_features, out_features), the checkpoints' layout.

    `init_scale` shrinks the initial weights of residual projections (c_proj), as GPT-2 did:
    std / sqrt(2 * n_layer).
    """

    def __init__(self, out_features: int, in_features: int, init_scale: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.init_scale = init_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (*x.shape[:-1], self.weight.shape[1])
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(shape)

    def pruned(self, index: torch.Tensor, dim: int) -> Conv1D:
        """A copy keeping `index` of the output (dim=1) or input (dim=0) features."""
        index = index.to(self.weight.device)
        w = self.weight.index_select(dim, index).detach().clone()
        b = self.bias.index_select(0, index) if dim == 1 else self.bias
        new = Conv1D(w.shape[1], w.shape[0], self.init_scale).to(device=w.device, dtype=w.dtype)
        new.weight = nn.Parameter(w, requires_grad=self.weight.requires_grad)
        new.bias = nn.Parameter(b.detach().clone(), requires_grad=self.bias.requires_grad)
        return new

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[0]}, out_features={self.weight.shape[1]}"


class Attention(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.n_head
        self.head_dim = config.head_dim
        self.split = config.n_embd  # width of each of q, k, v in c_attn's output
        self.scale = self.head_dim**-0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scale /= layer_idx + 1
        self.upcast = config.reorder_and_upcast_attn
        residual_scale = 1 / math.sqrt(2 * config.n_layer)
        self.c_attn = Conv1D(3 * config.n_embd, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.n_embd, residual_scale)
        self.attn_dropout_p = config.attn_pdrop
        self.resid_dropout = nn.Dropout(config.resid_pdrop)
        self.pruned_heads: set[int] = set()
        self.kept_heads = list(range(self.num_heads))  # original numbers of the heads present

    def prune(self, heads) -> None:
        heads, index = heads_index(heads, self.num_heads, self.head_dim, self.pruned_heads)
        if not heads:
            return
        qkv_index = torch.cat([index, index + self.split, index + 2 * self.split])
        self.c_attn = self.c_attn.pruned(qkv_index, dim=1)
        self.c_proj = self.c_proj.pruned(index, dim=0)
        self.pruned_heads |= heads
        self.kept_heads = [h for h in self.kept_heads if h not in heads]
        self.num_heads = len(self.kept_heads)
        self.split = self.num_heads * self.head_dim

    def forward(self, x, mask, cache, head_mask, output_attentions):
        B, T, _ = x.shape
        q, k, v = self.c_attn(x).split(self.split, dim=2)
        q = q.view(B, T, -1, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, -1, self.head_dim).transpose(1, 2)
        v = v.view(B, T, -1, self.head_dim).transpose(1, 2)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # (B, H, S, D)
        if head_mask is not None and head_mask.shape[1] != self.num_heads:
            head_mask = head_mask[:, self.kept_heads]  # a full-size mask on a pruned layer
        dtype = q.dtype
        if self.upcast:  # reorder_and_upcast_attn: scores and softmax in float32
            q, k, v = q.float(), k.float(), v.float()
            mask = mask.float() if mask is not None else None
        out, weights = attention(
            q, k, v, mask, scale=self.scale, head_mask=head_mask, need_weights=output_attentions,
            dropout=self.attn_dropout_p if self.training else 0.0, is_causal=mask is None and T > 1,
        )
        out = out.to(dtype).transpose(1, 2).reshape(B, T, -1)  # (B, T, H*D)
        return self.resid_dropout(self.c_proj(out)), weights


class MLP(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.c_fc = Conv1D(inner, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, inner, 1 / math.sqrt(2 * config.n_layer))
        self.act = get_activation(config.activation_function)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = Attention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x, mask, cache, head_mask, output_attentions):
        h, weights = self.attn(self.ln_1(x), mask, cache, head_mask, output_attentions)
        x = x + h
        return x + self.mlp(self.ln_2(x)), weights


class GPT2PreTrainedModel(PreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    # Older checkpoints store the causal mask as buffers.
    IGNORE_UNEXPECTED = [r"\.attn\.bias$", r"\.attn\.masked_bias$"]

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, Conv1D):
            with torch.no_grad():
                module.weight.normal_(0.0, self.config.initializer_range * module.init_scale)
                module.bias.zero_()
        else:
            super()._init_weights(module)


class GPT2Model(GPT2PreTrainedModel):
    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.wte = value

    def _prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        for layer, heads in heads_to_prune.items():
            self.h[layer].attn.prune(heads)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        past_key_values=None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithPast:
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        cache = past_key_values
        if cache is None and use_cache:
            cache = DynamicCache()
        past = 0 if cache is None or torch.compiler.is_compiling() else int(cache.get_seq_length())
        check_token_inputs(input_ids, inputs_embeds, self.wte.num_embeddings,
                           max_positions=self.config.n_positions, limit_name="n_positions", past=past)
        x = self.wte(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, C)
        position_ids, masks = decoder_positions_and_masks(
            attention_mask, position_ids, cache, x.shape[1], x.dtype, x.device)
        x = x + self.wpe(position_ids)
        if token_type_ids is not None:  # GPT-2 embeds token types with the word embeddings
            x = x + self.wte(token_type_ids)
        x = self.drop(x)
        head_masks = layer_head_masks(head_mask, cfg.n_layer, cfg.n_head, x.dtype)
        hidden, attns = [x], []
        for block, hm in zip(self.h, head_masks):
            x, weights = block(x, masks[None], cache, hm, output_attentions)
            hidden.append(x)
            attns.append(weights)
        x = self.ln_f(x)
        hidden[-1] = x  # the last hidden state is the normed one, as in the reference
        out = BaseModelOutputWithPast(
            last_hidden_state=x,
            past_key_values=cache if use_cache or past_key_values is not None else None,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attns) if output_attentions else None,
        )
        return out if return_dict is not False else out.to_tuple()



# -- heads ----------------------------------------------------------------------------------

class GPT2LMHeadModel(GenerationMixin, GPT2PreTrainedModel):
    TIED_WEIGHTS = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None,
                logits_to_keep: int = 0) -> CausalLMOutputWithPast:
        """`logits_to_keep=n` computes logits for the last n positions only (0: all)."""
        base = self.transformer(input_ids, past_key_values, attention_mask, token_type_ids, position_ids,
                                head_mask, inputs_embeds, use_cache, output_attentions, output_hidden_states,
                                return_dict=True)
        x = base.last_hidden_state
        logits = self.lm_head(x[:, -logits_to_keep:] if logits_to_keep else x)  # (B, T, V)
        loss = None if labels is None else causal_lm_loss(logits, labels)
        out = CausalLMOutputWithPast(loss, logits, base.past_key_values, base.hidden_states, base.attentions)
        return out if return_dict is not False else out.to_tuple()


class GPT2ForSequenceClassification(GPT2PreTrainedModel):
    """Classifies from the hidden state of each row's last real token."""

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.score = nn.Linear(config.n_embd, config.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None) -> SequenceClassifierOutput:
        base = self.transformer(input_ids, past_key_values, attention_mask, token_type_ids, position_ids,
                                head_mask, inputs_embeds, use_cache, output_attentions, output_hidden_states,
                                return_dict=True)
        logits = self.score(base.last_hidden_state)  # (B, T, num_labels)
        B = logits.shape[0]
        last = last_token_index(input_ids, attention_mask, self.config.pad_token_id, B)
        pooled = logits[torch.arange(B, device=logits.device), last]  # (B, num_labels)
        loss = None if labels is None else sequence_classification_loss(pooled, labels, self.config)
        out = SequenceClassifierOutput(loss, pooled, base.hidden_states, base.attentions)
        return out if return_dict is not False else out.to_tuple()


__all__ = ["GPT2Model", "GPT2LMHeadModel", "GPT2ForSequenceClassification", "GPT2PreTrainedModel"]
