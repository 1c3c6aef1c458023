"""BERT (arXiv:1810.04805), the encoder with absolute positions.

Matches transformers' `modeling_bert` numerically (post-norm blocks, exact-erf GELU, pooler
tanh). Differs: encoder only (no decoder or cross-attention mode), attention through
`loom.nn.attention`, head masks and pruning kept from the original API.
Shapes: B batch, T tokens, H heads, D head dim, C hidden size, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from ...modeling.base import PreTrainedModel
from ...modeling.checks import check_token_inputs
from ...modeling.heads import sequence_classification_loss, token_classification_loss
from ...modeling.outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    PreTrainingOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from ...nn.activations import get_activation
from ...nn.attention import attention, layer_head_masks
from ...nn.masks import padding_mask
from ...nn.pruning import heads_index, prune_linear
from .config import BertConfig


class Embeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids, position_ids, inputs_embeds) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # (B, T, C)
        B, T = inputs_embeds.shape[:2]
        if position_ids is None:
            position_ids = torch.arange(T, device=inputs_embeds.device).unsqueeze(0)
        if token_type_ids is None:
            token_type_ids = torch.zeros((B, T), dtype=torch.long, device=inputs_embeds.device)
        x = inputs_embeds + self.token_type_embeddings(token_type_ids) + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class SelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        inner = self.num_heads * self.head_dim
        self.query = nn.Linear(config.hidden_size, inner)
        self.key = nn.Linear(config.hidden_size, inner)
        self.value = nn.Linear(config.hidden_size, inner)
        self.dropout_p = config.attention_probs_dropout_prob
        self.kept_heads = list(range(self.num_heads))  # original numbers of the heads present

    def forward(self, x, mask, head_mask, output_attentions):
        B, T, _ = x.shape
        q = self.query(x).view(B, T, -1, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.key(x).view(B, T, -1, self.head_dim).transpose(1, 2)
        v = self.value(x).view(B, T, -1, self.head_dim).transpose(1, 2)
        if head_mask is not None and head_mask.shape[1] != self.num_heads:
            head_mask = head_mask[:, self.kept_heads]  # a full-size mask on a pruned layer
        out, weights = attention(
            q, k, v, mask, scale=self.head_dim**-0.5, head_mask=head_mask,
            dropout=self.dropout_p if self.training else 0.0, need_weights=output_attentions,
        )
        return out.transpose(1, 2).reshape(B, T, -1), weights  # (B, T, H*D)


class Output(nn.Module):
    """Projection back to the hidden size, dropout, residual, post-norm: after attention
    (`attention.output`) and after the MLP (`output`)."""

    def __init__(self, config: BertConfig, in_features: int):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = SelfAttention(config)  # named as in the checkpoints: attention.self.query
        self.output = Output(config, config.hidden_size)
        self.pruned_heads: set[int] = set()

    def prune(self, heads) -> None:
        att = self.self
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

    def forward(self, x, mask, head_mask, output_attentions):
        out, weights = self.self(x, mask, head_mask, output_attentions)
        return self.output(out, x), weights


class Intermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = get_activation(config.hidden_act)

    def forward(self, x):
        return self.act(self.dense(x))


class Layer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = Intermediate(config)
        self.output = Output(config, config.intermediate_size)

    def forward(self, x, mask, head_mask, output_attentions):
        x, weights = self.attention(x, mask, head_mask, output_attentions)
        return self.output(self.intermediate(x), x), weights


class Encoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))


class Pooler(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))  # the [CLS] token


class BertPreTrainedModel(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    # TF-era checkpoints name LayerNorm parameters gamma/beta.
    RENAMES = [(r"LayerNorm\.gamma$", "LayerNorm.weight"), (r"LayerNorm\.beta$", "LayerNorm.bias"),
               (r"^(.*)cls\.predictions\.bias$", r"\1cls.predictions.decoder.bias")]
    IGNORE_UNEXPECTED = [r"position_ids$", r"token_type_ids$"]


class BertModel(BertPreTrainedModel):
    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.pooler = Pooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def _prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        for layer, heads in heads_to_prune.items():
            self.encoder.layer[layer].attention.prune(heads)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        check_token_inputs(input_ids, inputs_embeds, self.get_input_embeddings().num_embeddings,
                           max_positions=cfg.max_position_embeddings)
        x = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)  # (B, T, C)
        mask = padding_mask(attention_mask, x.dtype)  # (B, 1, 1, T)
        head_masks = layer_head_masks(head_mask, cfg.num_hidden_layers, cfg.num_attention_heads, x.dtype)
        hidden, attns = [x], []
        for layer, hm in zip(self.encoder.layer, head_masks):
            x, weights = layer(x, mask, hm, output_attentions)
            hidden.append(x)
            attns.append(weights)
        out = BaseModelOutputWithPooling(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attns) if output_attentions else None,
        )
        return out if return_dict is not False else out.to_tuple()



# -- heads ----------------------------------------------------------------------------------

class PredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = get_activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x):
        return self.LayerNorm(self.act(self.dense(x)))


class LMPredictionHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = PredictionHeadTransform(config)
        # Checkpoints store the bias as cls.predictions.bias; RENAMES maps it here.
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, x):
        return self.decoder(self.transform(x))  # (B, T, V)


class OnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = LMPredictionHead(config)

    def forward(self, x):
        return self.predictions(x)


class PreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = LMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, x, pooled):
        return self.predictions(x), self.seq_relationship(pooled)


class _MLMOutputEmbeddings:
    TIED_WEIGHTS = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}
    # transformers reads the decoder bias under this name.
    SAVE_ALIASES = {"cls.predictions.decoder.bias": "cls.predictions.bias"}

    def get_output_embeddings(self) -> nn.Linear:
        return self.cls.predictions.decoder

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.cls.predictions.decoder = value


class BertForPreTraining(_MLMOutputEmbeddings, BertPreTrainedModel):
    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = PreTrainingHeads(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                head_mask=None, inputs_embeds=None, labels=None, next_sentence_label=None,
                output_attentions=None, output_hidden_states=None, return_dict=None) -> PreTrainingOutput:
        base = self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                         output_attentions, output_hidden_states, return_dict=True)
        scores, nsp = self.cls(base.last_hidden_state, base.pooler_output)
        loss = None
        if labels is not None and next_sentence_label is not None:
            loss = token_classification_loss(scores, labels, scores.shape[-1]) + \
                token_classification_loss(nsp, next_sentence_label, 2)
        out = PreTrainingOutput(loss, scores, nsp, base.hidden_states, base.attentions)
        return out if return_dict is not False else out.to_tuple()


class BertForMaskedLM(_MLMOutputEmbeddings, BertPreTrainedModel):
    IGNORE_UNEXPECTED = BertPreTrainedModel.IGNORE_UNEXPECTED + [r"^bert\.pooler\.", r"^cls\.seq_relationship\."]

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = OnlyMLMHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                head_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None) -> MaskedLMOutput:
        base = self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                         output_attentions, output_hidden_states, return_dict=True)
        logits = self.cls(base.last_hidden_state)
        loss = None if labels is None else token_classification_loss(logits, labels, logits.shape[-1])
        out = MaskedLMOutput(loss, logits, base.hidden_states, base.attentions)
        return out if return_dict is not False else out.to_tuple()


class BertForSequenceClassification(BertPreTrainedModel):
    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                head_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None) -> SequenceClassifierOutput:
        base = self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                         output_attentions, output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(base.pooler_output))  # (B, num_labels)
        loss = None if labels is None else sequence_classification_loss(logits, labels, self.config)
        out = SequenceClassifierOutput(loss, logits, base.hidden_states, base.attentions)
        return out if return_dict is not False else out.to_tuple()


class BertForTokenClassification(BertPreTrainedModel):
    IGNORE_UNEXPECTED = BertPreTrainedModel.IGNORE_UNEXPECTED + [r"^bert\.pooler\."]

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                head_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None) -> TokenClassifierOutput:
        base = self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                         output_attentions, output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(base.last_hidden_state))  # (B, T, num_labels)
        loss = None if labels is None else token_classification_loss(logits, labels, self.config.num_labels)
        out = TokenClassifierOutput(loss, logits, base.hidden_states, base.attentions)
        return out if return_dict is not False else out.to_tuple()


class BertForQuestionAnswering(BertPreTrainedModel):
    IGNORE_UNEXPECTED = BertPreTrainedModel.IGNORE_UNEXPECTED + [r"^bert\.pooler\."]

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        # Sized by num_labels as in the checkpoints; forward needs exactly 2 (start, end).
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                head_mask=None, inputs_embeds=None, start_positions=None, end_positions=None,
                output_attentions=None, output_hidden_states=None, return_dict=None) -> QuestionAnsweringModelOutput:
        base = self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                         output_attentions, output_hidden_states, return_dict=True)
        if self.config.num_labels != 2:
            raise ConfigError(f"question answering needs num_labels=2 (start, end), found {self.config.num_labels}")
        start, end = self.qa_outputs(base.last_hidden_state).unbind(-1)  # (B, T) each
        loss = None
        if start_positions is not None and end_positions is not None:
            # Positions outside the sequence are ignored, as in the reference.
            T = start.shape[1]
            ce = nn.functional.cross_entropy
            s = start_positions.reshape(-1).clamp(0, T)
            e = end_positions.reshape(-1).clamp(0, T)
            loss = (ce(start, s, ignore_index=T) + ce(end, e, ignore_index=T)) / 2
        out = QuestionAnsweringModelOutput(loss, start.contiguous(), end.contiguous(),
                                           base.hidden_states, base.attentions)
        return out if return_dict is not False else out.to_tuple()


__all__ = [
    "BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification",
    "BertForTokenClassification", "BertForQuestionAnswering", "BertPreTrainedModel",
]
