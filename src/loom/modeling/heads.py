"""Losses of the task heads, shared by every architecture."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError, InputError


def sequence_classification_loss(logits: torch.Tensor, labels: torch.Tensor, config) -> torch.Tensor:
    """Regression (MSE), single-label (cross-entropy) or multi-label (BCE) by `problem_type`.

    When the config names none, it is inferred as the reference does: one label -> regression,
    integer labels -> single-label, float labels -> multi-label. The inferred type is stored
    on the config so that training and saving agree.
    """
    n = config.num_labels
    if config.problem_type is None:
        if n == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int, torch.int16, torch.int8, torch.uint8):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        if n == 1:
            return F.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
        return F.mse_loss(logits, labels.to(logits.dtype))
    if config.problem_type == "single_label_classification":
        return token_classification_loss(logits, labels, n)
    if labels.shape != logits.shape:
        raise InputError(
            f"multi-label labels must have the logits' shape {tuple(logits.shape)}, "
            f"found {tuple(labels.shape)}"
        )
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def token_classification_loss(logits: torch.Tensor, labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Cross-entropy over the last axis; label -100 is ignored."""
    labels = labels.reshape(-1).long()
    bad = (labels != -100) & ((labels < 0) | (labels >= num_labels))
    if bool(bad.any()):
        raise InputError(
            f"labels must be in [0, {num_labels}) or -100 (ignored), found "
            f"{labels[bad][:5].tolist()}"
        )
    return F.cross_entropy(logits.reshape(-1, num_labels).float(), labels, ignore_index=-100)


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: logits at t predict labels at t + 1 (pass labels = input_ids);
    label -100 is ignored."""
    V = logits.shape[-1]
    return token_classification_loss(logits[:, :-1], labels[:, 1:].to(logits.device), V)


def shift_tokens_right(labels: torch.Tensor, config) -> torch.Tensor:
    """Decoder inputs for teacher forcing in encoder-decoder models: `config.decoder_start_token_id`,
    then the labels but the last; ignored labels (-100) become `config.pad_token_id`."""
    start, pad = config.decoder_start_token_id, config.pad_token_id
    for name, value in (("decoder_start_token_id", start), ("pad_token_id", pad)):
        if value is None:
            raise ConfigError(f"config.{name} is not set; it is needed to build decoder inputs from labels")
    shifted = labels.new_full(labels.shape, start)
    shifted[..., 1:] = labels[..., :-1]
    return shifted.masked_fill(shifted == -100, pad)


def last_token_index(input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None,
                     pad_token_id: int | None, batch_size: int) -> torch.Tensor | int:
    """Index of each row's last real token, for decoder classification heads: the last token
    that is not `pad_token_id` (as the reference does), else the last 1 of the attention mask,
    else the last position (only unambiguous for a batch of one)."""
    if input_ids is not None and pad_token_id is not None:
        positions = torch.arange(input_ids.shape[-1], device=input_ids.device)
        return (positions * (input_ids != pad_token_id)).argmax(-1)
    if attention_mask is not None:
        positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
        return (positions * (attention_mask != 0)).argmax(-1)
    if batch_size != 1:
        raise InputError(
            "cannot find the last token of each row: set config.pad_token_id or pass attention_mask"
            f" (batch of {batch_size})"
        )
    return -1
