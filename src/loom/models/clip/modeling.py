"""CLIP (arXiv:2103.00020): a text and an image transformer trained so that matching captions
and images have close embeddings; zero-shot classification compares an image to label prompts.

Matches transformers' `modeling_clip` numerically: pre-norm blocks with quick-GELU, causal
text attention pooled at the end-of-text token (at the highest id for the old configs whose
eos_token_id is 2), vision pooled at the class token after `post_layernorm` (the checkpoints'
spelling `pre_layrnorm` kept), projections without bias, `logit_scale` learned in log space.
Parameter names are the Hub's (`text_model.encoder.layers.0.self_attn.q_proj`); a tower model
loads from a full CLIP checkpoint and the other way round.
Differs: attention through `loom.nn.attention`, head masks and pruning per tower,
`get_text_features` / `get_image_features` return the projected tensor (as transformers 4.x).
Shapes: B batch, T tokens, P patches, C hidden size, H heads, D head dim, E projection dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InputError
from ...modeling.base import PreTrainedModel
from ...modeling.checks import check_token_inputs
from ...modeling.init import init_module
from ...modeling.outputs import (
    BaseModelOutputWithPooling,
    CLIPOutput,
    CLIPTextModelOutput,
    CLIPVisionModelOutput,
)
from ...nn.activations import get_activation
from ...nn.attention import attention, layer_head_masks
from ...nn.masks import causal_mask
from ...nn.patches import interpolate_pos_encoding
from ...nn.pruning import heads_index, prune_linear
from ..vit.modeling import check_pixel_values
from .config import CLIPConfig, CLIPTextConfig, CLIPVisionConfig


class TextEmbeddings(nn.Module):
    def __init__(self, config: CLIPTextConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def forward(self, input_ids, position_ids):
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        return self.token_embedding(input_ids) + self.position_embedding(position_ids)  # (B, T, C)


class VisionEmbeddings(nn.Module):
    def __init__(self, config: CLIPVisionConfig):
        super().__init__()
        C = config.hidden_size
        self.patch_size = config.patch_size
        self.grid = config.grid
        self.class_embedding = nn.Parameter(torch.zeros(C))
        self.patch_embedding = nn.Conv2d(config.num_channels, C, kernel_size=config.patch_size,
                                         stride=config.patch_size, bias=False)
        self.position_embedding = nn.Embedding(self.grid[0] * self.grid[1] + 1, C)

    def forward(self, pixel_values, interpolate: bool):
        B, _, height, width = pixel_values.shape
        new_grid = (height // self.patch_size, width // self.patch_size)
        if new_grid != self.grid and not interpolate:
            raise InputError(
                f"pixel_values are {height}x{width}, the model was trained on "
                f"{self.grid[0] * self.patch_size}x{self.grid[1] * self.patch_size}; resize the "
                f"images, or pass interpolate_pos_encoding=True"
            )
        x = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)  # (B, P, C)
        x = torch.cat([self.class_embedding.expand(B, 1, -1), x], dim=1)  # (B, T, C)
        pos = self.position_embedding.weight.unsqueeze(0)
        return x + interpolate_pos_encoding(pos, self.grid, new_grid)


class Attention(nn.Module):
    def __init__(self, config: CLIPTextConfig | CLIPVisionConfig):
        super().__init__()
        C = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.k_proj = nn.Linear(C, C)
        self.v_proj = nn.Linear(C, C)
        self.q_proj = nn.Linear(C, C)
        self.out_proj = nn.Linear(C, C)
        self.dropout_p = config.attention_dropout
        self.kept_heads = list(range(self.num_heads))  # original numbers of the heads present
        self.pruned_heads: set[int] = set()

    def prune(self, heads) -> None:
        heads, index = heads_index(heads, self.num_heads, self.head_dim, self.pruned_heads)
        if not heads:
            return
        for name in ("q_proj", "k_proj", "v_proj"):
            setattr(self, name, prune_linear(getattr(self, name), index))
        self.out_proj = prune_linear(self.out_proj, index, dim=1)
        self.pruned_heads |= heads
        self.kept_heads = [h for h in self.kept_heads if h not in heads]
        self.num_heads = len(self.kept_heads)

    def forward(self, x, mask, is_causal, head_mask, output_attentions):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, -1, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, -1, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, -1, self.head_dim).transpose(1, 2)
        if head_mask is not None and head_mask.shape[1] != self.num_heads:
            head_mask = head_mask[:, self.kept_heads]  # a full-size mask on a pruned layer
        out, weights = attention(
            q, k, v, mask, scale=self.head_dim**-0.5, head_mask=head_mask, is_causal=is_causal,
            dropout=self.dropout_p if self.training else 0.0, need_weights=output_attentions,
        )
        return self.out_proj(out.transpose(1, 2).reshape(B, T, -1)), weights


class MLP(nn.Module):
    def __init__(self, config: CLIPTextConfig | CLIPVisionConfig):
        super().__init__()
        self.activation_fn = get_activation(config.hidden_act)
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x):
        return self.fc2(self.activation_fn(self.fc1(x)))


class EncoderLayer(nn.Module):
    """Pre-norm block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: CLIPTextConfig | CLIPVisionConfig):
        super().__init__()
        self.self_attn = Attention(config)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x, mask, is_causal, head_mask, output_attentions):
        attn, weights = self.self_attn(self.layer_norm1(x), mask, is_causal, head_mask, output_attentions)
        x = x + attn
        return x + self.mlp(self.layer_norm2(x)), weights


class Encoder(nn.Module):
    def __init__(self, config: CLIPTextConfig | CLIPVisionConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x, mask, is_causal, head_mask, output_attentions, output_hidden_states, config):
        """Returns the last state, the embeddings plus every layer's output, every layer's weights."""
        head_masks = layer_head_masks(head_mask, config.num_hidden_layers, config.num_attention_heads, x.dtype)
        hidden, attns = [x], []
        for layer, hm in zip(self.layers, head_masks):
            x, weights = layer(x, mask, is_causal, hm, output_attentions)
            hidden.append(x)
            attns.append(weights)
        return x, (tuple(hidden) if output_hidden_states else None), (tuple(attns) if output_attentions else None)


class CLIPPreTrainedModel(PreTrainedModel):
    config_class = CLIPConfig
    base_model_prefix = "clip"
    IGNORE_UNEXPECTED = [r"position_ids$"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Only `module`'s own parameters: normal with the std its tower set at build time
        (`init_std`, the reference's depth- and width-scaled recipe), LayerNorm to identity."""
        std = getattr(module, "init_std", None)
        if isinstance(module, VisionEmbeddings):
            module.class_embedding.normal_(0.0, module.class_embedding.shape[0] ** -0.5 * module.init_factor)
        elif std is not None and isinstance(module, (nn.Linear, nn.Conv2d, nn.Embedding)):
            module.weight.normal_(0.0, std)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        else:
            init_module(module, getattr(self.config, "initializer_range", 0.02))


def set_init_std(config, tower: nn.Module) -> None:
    """Record on each weight-bearing module of a tower the std the reference initialises it with."""
    f, C, L = config.initializer_factor, config.hidden_size, config.num_hidden_layers
    deep = C**-0.5 * (2 * L) ** -0.5 * f
    for m in tower.modules():
        if isinstance(m, TextEmbeddings):
            m.token_embedding.init_std = m.position_embedding.init_std = 0.02 * f
        elif isinstance(m, VisionEmbeddings):
            m.init_factor = f
            m.patch_embedding.init_std = m.position_embedding.init_std = config.initializer_range * f
        elif isinstance(m, Attention):
            m.q_proj.init_std = m.k_proj.init_std = m.v_proj.init_std = deep
            m.out_proj.init_std = C**-0.5 * f
        elif isinstance(m, MLP):
            m.fc1.init_std, m.fc2.init_std = (2 * C) ** -0.5 * f, deep


class CLIPTextModel(CLIPPreTrainedModel):
    config_class = CLIPTextConfig
    # Older checkpoints (and full CLIP ones) keep the tower under "text_model."; loading strips it.
    base_model_prefix = "text_model"

    def __init__(self, config: CLIPTextConfig):
        super().__init__(config)
        self.embeddings = TextEmbeddings(config)
        self.encoder = Encoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        set_init_std(config, self)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.token_embedding

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.token_embedding = value

    def _prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        for layer, heads in heads_to_prune.items():
            self.encoder.layers[layer].self_attn.prune(heads)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None,
                output_attentions=None, output_hidden_states=None, return_dict=None) -> BaseModelOutputWithPooling:
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        check_token_inputs(input_ids, None, self.get_input_embeddings().num_embeddings,
                           max_positions=self.config.max_position_embeddings, embeds_allowed=False)
        x = self.embeddings(input_ids, position_ids)  # (B, T, C)
        T = x.shape[1]
        mask = causal_mask(attention_mask, 0, T, T, x.dtype, x.device)  # (B, 1, T, T); None: no padding
        x, hidden, attns = self.encoder(x, mask, mask is None, head_mask, output_attentions,
                                        output_hidden_states, cfg)
        x = self.final_layer_norm(x)
        out = BaseModelOutputWithPooling(x, x[torch.arange(x.shape[0], device=x.device), self._eos_index(input_ids)],
                                         hidden, attns)
        return out if return_dict is not False else out.to_tuple()

    def _eos_index(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Where each text ends: its first eos token (the highest id for eos_token_id=2 configs,
        which predate a correct eos id; as the reference)."""
        ids = input_ids.to(torch.int)
        if self.config.eos_token_id == 2:
            return ids.argmax(dim=-1)
        return (ids == self.config.eos_token_id).int().argmax(dim=-1)



class CLIPVisionModel(CLIPPreTrainedModel):
    config_class = CLIPVisionConfig
    base_model_prefix = "vision_model"
    main_input_name = "pixel_values"

    def __init__(self, config: CLIPVisionConfig):
        super().__init__(config)
        self.embeddings = VisionEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.encoder = Encoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        set_init_std(config, self)
        self.post_init()

    def get_input_embeddings(self) -> nn.Conv2d:
        return self.embeddings.patch_embedding

    def _prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        for layer, heads in heads_to_prune.items():
            self.encoder.layers[layer].self_attn.prune(heads)

    def forward(self, pixel_values=None, head_mask=None, output_attentions=None, output_hidden_states=None,
                interpolate_pos_encoding=False, return_dict=None) -> BaseModelOutputWithPooling:
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        pixel_values = check_pixel_values(pixel_values, cfg.num_channels, self.dtype)
        x = self.pre_layrnorm(self.embeddings(pixel_values, bool(interpolate_pos_encoding)))  # (B, T, C)
        x, hidden, attns = self.encoder(x, None, False, head_mask, output_attentions, output_hidden_states, cfg)
        out = BaseModelOutputWithPooling(x, self.post_layernorm(x[:, 0]), hidden, attns)
        return out if return_dict is not False else out.to_tuple()


class CLIPModel(CLIPPreTrainedModel):
    def __init__(self, config: CLIPConfig):
        super().__init__(config)
        self.text_model = CLIPTextModel(config.text_config)
        self.vision_model = CLIPVisionModel(config.vision_config)
        self.visual_projection = nn.Linear(config.vision_config.hidden_size, config.projection_dim, bias=False)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        for proj in (self.visual_projection, self.text_projection):
            proj.init_std = proj.in_features**-0.5 * config.initializer_factor
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is self:  # the only parameter of CLIPModel itself
            with torch.no_grad():
                self.logit_scale.fill_(self.config.logit_scale_init_value)
        else:
            super()._init_weights(module)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.text_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.text_model.set_input_embeddings(value)

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None) -> nn.Embedding:
        return self.text_model.resize_token_embeddings(new_num_tokens, pad_to_multiple_of)  # text_config's vocab

    def _prune_heads(self, heads_to_prune) -> None:
        raise InputError("CLIPModel has two towers: prune them one at a time, "
                         "model.text_model.prune_heads({...}) or model.vision_model.prune_heads({...})")

    def get_text_features(self, input_ids=None, attention_mask=None, position_ids=None) -> torch.Tensor:
        """(B, E): the projected pooled text states (not normalised)."""
        pooled = self.text_model(input_ids, attention_mask, position_ids, return_dict=True).pooler_output
        return self.text_projection(pooled)

    def get_image_features(self, pixel_values=None, interpolate_pos_encoding=False) -> torch.Tensor:
        """(B, E): the projected pooled image states (not normalised)."""
        pooled = self.vision_model(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding,
                                   return_dict=True).pooler_output
        return self.visual_projection(pooled)

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None, position_ids=None,
                return_loss=None, output_attentions=None, output_hidden_states=None,
                interpolate_pos_encoding=False, return_dict=None) -> CLIPOutput:
        flags = dict(output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True)
        vision = self.vision_model(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, **flags)
        text = self.text_model(input_ids, attention_mask, position_ids, **flags)
        image_embeds = F.normalize(self.visual_projection(vision.pooler_output), dim=-1)  # (Bi, E)
        text_embeds = F.normalize(self.text_projection(text.pooler_output), dim=-1)       # (Bt, E)
        logits_per_text = text_embeds @ image_embeds.t() * self.logit_scale.exp()         # (Bt, Bi)
        loss = contrastive_loss(logits_per_text) if return_loss else None
        out = CLIPOutput(loss, logits_per_text.t(), logits_per_text, text_embeds, image_embeds, text, vision)
        return out if return_dict is not False else out.to_tuple()


def contrastive_loss(logits_per_text: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy: text i matches image i, and image i text i."""
    if logits_per_text.shape[0] != logits_per_text.shape[1]:
        raise InputError(f"return_loss needs as many texts as images (pairs), found {tuple(logits_per_text.shape)}")
    target = torch.arange(logits_per_text.shape[0], device=logits_per_text.device)
    return (F.cross_entropy(logits_per_text, target) + F.cross_entropy(logits_per_text.t(), target)) / 2


class CLIPTextModelWithProjection(CLIPPreTrainedModel):
    config_class = CLIPTextConfig
    base_model_prefix = "text_model"

    def __init__(self, config: CLIPTextConfig):
        super().__init__(config)
        self.text_model = CLIPTextModel(config)
        self.text_projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)
        self.text_projection.init_std = config.hidden_size**-0.5 * config.initializer_factor
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None,
                output_attentions=None, output_hidden_states=None, return_dict=None) -> CLIPTextModelOutput:
        text = self.text_model(input_ids, attention_mask, position_ids, head_mask, output_attentions,
                               output_hidden_states, return_dict=True)
        out = CLIPTextModelOutput(self.text_projection(text.pooler_output), text.last_hidden_state,
                                  text.hidden_states, text.attentions)
        return out if return_dict is not False else out.to_tuple()


class CLIPVisionModelWithProjection(CLIPPreTrainedModel):
    config_class = CLIPVisionConfig
    base_model_prefix = "vision_model"
    main_input_name = "pixel_values"

    def __init__(self, config: CLIPVisionConfig):
        super().__init__(config)
        self.vision_model = CLIPVisionModel(config)
        self.visual_projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)
        self.visual_projection.init_std = config.hidden_size**-0.5 * config.initializer_factor
        self.post_init()

    def get_input_embeddings(self) -> nn.Conv2d:
        return self.vision_model.get_input_embeddings()

    def forward(self, pixel_values=None, head_mask=None, output_attentions=None, output_hidden_states=None,
                interpolate_pos_encoding=False, return_dict=None) -> CLIPVisionModelOutput:
        vision = self.vision_model(pixel_values, head_mask, output_attentions, output_hidden_states,
                                   interpolate_pos_encoding, return_dict=True)
        out = CLIPVisionModelOutput(self.visual_projection(vision.pooler_output), vision.last_hidden_state,
                                    vision.hidden_states, vision.attentions)
        return out if return_dict is not False else out.to_tuple()


__all__ = [
    "CLIPModel", "CLIPTextModel", "CLIPVisionModel", "CLIPTextModelWithProjection",
    "CLIPVisionModelWithProjection", "CLIPPreTrainedModel",
]
