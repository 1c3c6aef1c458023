"""ViT, the Vision Transformer (arXiv:2010.11929): an image as a sequence of 16x16 patches.

Matches transformers' `modeling_vit` numerically (pre-norm blocks, [CLS] token, learned
positions, bicubic `interpolate_pos_encoding` for other resolutions). Parameters carry the
names of the Hub checkpoints (`vit.encoder.layer.0.attention.attention.query`), which
transformers 5 also writes. Differs: attention through `loom.nn.attention`, head masks and
pruning kept from the original API, no masked-image-modeling head.
Shapes: B batch, C hidden size, H heads, D head dim, P patches, T = P + 1 tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import InputError
from ...modeling.base import PreTrainedModel
from ...modeling.heads import sequence_classification_loss
from ...modeling.init import init_module
from ...modeling.outputs import BaseModelOutputWithPooling, ImageClassifierOutput
from ...nn.activations import get_activation
from ...nn.attention import attention, layer_head_masks
from ...nn.patches import interpolate_pos_encoding
from ...nn.pruning import heads_index, prune_linear
from .config import ViTConfig, pair


class PatchEmbeddings(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.patch_size = pair(config.patch_size, "patch_size")
        self.num_channels = config.num_channels
        self.projection = nn.Conv2d(config.num_channels, config.hidden_size,
                                    kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, pixel_values):
        return self.projection(pixel_values).flatten(2).transpose(1, 2)  # (B, P, C)


class Embeddings(nn.Module):
    def __init__(self, config: ViTConfig, use_mask_token: bool = False):
        super().__init__()
        C = config.hidden_size
        self.grid = config.grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, C)) if use_mask_token else None
        self.patch_embeddings = PatchEmbeddings(config)
        self.position_embeddings = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1] + 1, C))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, pixel_values, bool_masked_pos=None, interpolate: bool = False):
        B, _, height, width = pixel_values.shape
        ph, pw = self.patch_embeddings.patch_size
        new_grid = (height // ph, width // pw)
        if new_grid != self.grid and not interpolate:
            raise InputError(
                f"pixel_values are {height}x{width}, the model was trained on {self.grid[0] * ph}x"
                f"{self.grid[1] * pw}; resize the images, or pass interpolate_pos_encoding=True"
            )
        x = self.patch_embeddings(pixel_values)  # (B, P, C)
        if bool_masked_pos is not None:
            if self.mask_token is None:
                raise InputError("bool_masked_pos needs a model built with use_mask_token=True")
            mask = bool_masked_pos.unsqueeze(-1).type_as(x)
            x = x * (1.0 - mask) + self.mask_token.expand_as(x) * mask
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)  # (B, T, C)
        return self.dropout(x + interpolate_pos_encoding(self.position_embeddings, self.grid, new_grid))


class SelfAttention(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        inner = self.num_heads * self.head_dim
        self.query = nn.Linear(config.hidden_size, inner, bias=config.qkv_bias)
        self.key = nn.Linear(config.hidden_size, inner, bias=config.qkv_bias)
        self.value = nn.Linear(config.hidden_size, inner, bias=config.qkv_bias)
        self.dropout_p = config.attention_probs_dropout_prob
        self.kept_heads = list(range(self.num_heads))  # original numbers of the heads present

    def forward(self, x, head_mask, output_attentions):
        B, T, _ = x.shape
        q = self.query(x).view(B, T, -1, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.key(x).view(B, T, -1, self.head_dim).transpose(1, 2)
        v = self.value(x).view(B, T, -1, self.head_dim).transpose(1, 2)
        if head_mask is not None and head_mask.shape[1] != self.num_heads:
            head_mask = head_mask[:, self.kept_heads]  # a full-size mask on a pruned layer
        out, weights = attention(
            q, k, v, None, scale=self.head_dim**-0.5, head_mask=head_mask,
            dropout=self.dropout_p if self.training else 0.0, need_weights=output_attentions,
        )
        return out.transpose(1, 2).reshape(B, T, -1), weights  # (B, T, H*D)


class SelfOutput(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x):
        return self.dropout(self.dense(x))


class Attention(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.attention = SelfAttention(config)  # named as in the checkpoints: attention.attention.query
        self.output = SelfOutput(config)
        self.pruned_heads: set[int] = set()

    def prune(self, heads) -> None:
        att = self.attention
        heads, index = heads_index(heads, att.num_heads, att.head_dim, self.pruned_heads)
        if not heads:
            return
        att.query = prune_linear(att.query, index)
        att.key = prune_linear(att.key, index)
        att.value = prune_linear(att.value, index)
        self.output.dense = prune_linear(self.output.dense, index, dim=1)
        self.pruned_heads |= heads
        att.kept_heads = [h for h in att.kept_heads if h not in heads]
        att.num_heads = len(att.kept_heads)

    def forward(self, x, head_mask, output_attentions):
        out, weights = self.attention(x, head_mask, output_attentions)
        return self.output(out), weights


class Intermediate(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = get_activation(config.hidden_act)

    def forward(self, x):
        return self.act(self.dense(x))


class Output(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.dropout(self.dense(x)) + residual


class Layer(nn.Module):
    """Pre-norm block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = Intermediate(config)
        self.output = Output(config)
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x, head_mask, output_attentions):
        attn, weights = self.attention(self.layernorm_before(x), head_mask, output_attentions)
        x = attn + x
        return self.output(self.intermediate(self.layernorm_after(x)), x), weights


class Encoder(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))


class Pooler(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.pooler_output_size or config.hidden_size)
        self.activation = get_activation(config.pooler_act)

    def forward(self, x):
        return self.activation(self.dense(x[:, 0]))  # the [CLS] token


class ViTPreTrainedModel(PreTrainedModel):
    config_class = ViTConfig
    base_model_prefix = "vit"
    main_input_name = "pixel_values"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, Embeddings):
            nn.init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
            nn.init.trunc_normal_(module.cls_token, mean=0.0, std=std)
            if module.mask_token is not None:
                module.mask_token.zero_()
        else:
            init_module(module, std)


class ViTModel(ViTPreTrainedModel):
    def __init__(self, config: ViTConfig, add_pooling_layer: bool = True, use_mask_token: bool = False):
        super().__init__(config)
        self.embeddings = Embeddings(config, use_mask_token=use_mask_token)
        self.encoder = Encoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pooler = Pooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> PatchEmbeddings:
        return self.embeddings.patch_embeddings

    def _prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        for layer, heads in heads_to_prune.items():
            self.encoder.layer[layer].attention.prune(heads)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        pixel_values = check_pixel_values(pixel_values, cfg.num_channels, self.dtype)
        x = self.embeddings(pixel_values, bool_masked_pos, bool(interpolate_pos_encoding))  # (B, T, C)
        head_masks = layer_head_masks(head_mask, cfg.num_hidden_layers, cfg.num_attention_heads, x.dtype)
        hidden, attns = [x], []
        for layer, hm in zip(self.encoder.layer, head_masks):
            x, weights = layer(x, hm, output_attentions)
            hidden.append(x)
            attns.append(weights)
        x = self.layernorm(x)
        out = BaseModelOutputWithPooling(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attns) if output_attentions else None,
        )
        return out if return_dict is not False else out.to_tuple()


def check_pixel_values(pixel_values, channels: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, channels, H, W) in the model's dtype, or an InputError saying what came instead."""
    if pixel_values is None:
        raise InputError("pixel_values is required: (batch, channels, height, width), e.g. from the image processor")
    if not isinstance(pixel_values, torch.Tensor):
        raise InputError(f"pixel_values must be a torch tensor, found {type(pixel_values).__name__}; "
                         f"call the image processor with return_tensors='pt'")
    if pixel_values.dim() != 4 or pixel_values.shape[1] != channels:
        raise InputError(f"pixel_values must have shape (batch, {channels}, height, width), "
                         f"found {tuple(pixel_values.shape)}")
    return pixel_values.to(dtype)


class ViTForImageClassification(ViTPreTrainedModel):
    """A linear classifier on the final [CLS] state (no pooler, as in the checkpoints)."""

    IGNORE_UNEXPECTED = [r"^(vit\.)?pooler\."]

    def __init__(self, config: ViTConfig):
        super().__init__(config)
        self.vit = ViTModel(config, add_pooling_layer=False)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        self.post_init()

    def forward(self, pixel_values=None, head_mask=None, labels=None, output_attentions=None,
                output_hidden_states=None, interpolate_pos_encoding=None, return_dict=None) -> ImageClassifierOutput:
        base = self.vit(pixel_values, head_mask=head_mask, output_attentions=output_attentions,
                        output_hidden_states=output_hidden_states,
                        interpolate_pos_encoding=interpolate_pos_encoding, return_dict=True)
        logits = self.classifier(base.last_hidden_state[:, 0])  # (B, num_labels)
        loss = None if labels is None else sequence_classification_loss(logits, labels, self.config)
        out = ImageClassifierOutput(loss, logits, base.hidden_states, base.attentions)
        return out if return_dict is not False else out.to_tuple()


__all__ = ["ViTModel", "ViTForImageClassification", "ViTPreTrainedModel"]
