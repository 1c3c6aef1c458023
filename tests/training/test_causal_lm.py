"""The Trainer on a tiny Llama: its loss falls on a small text, and accumulation is weighted
by the shifted label count (token t predicts t + 1), so 4 x 2 equals a batch of 8."""

from __future__ import annotations

import torch

import loom
from loom.training import DataCollatorForLanguageModeling, Trainer, TrainingArguments
from loom.training import trainer as trainer_module
from tests.training.common import max_weight_diff, weights

TEXT = """The loom weaves threads into cloth. A shuttle carries the weft across the warp.
The weaver presses the pedal and the shed opens. Thread by thread the pattern grows.
Linen, wool and silk each ask for their own tension. The cloth rolls onto the beam."""
CAUSAL = DataCollatorForLanguageModeling(mlm=False, pad_token_id=0)


def tiny_llama(seed=0):
    torch.manual_seed(seed)
    config = loom.LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                              bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return loom.LlamaForCausalLM(config)


def byte_chunks(text, length, stride):
    ids = [b for b in text.encode("ascii")]
    return [{"input_ids": ids[i:i + length]} for i in range(0, len(ids) - length + 1, stride)]


def test_tiny_llama_loss_falls_on_a_small_text(tmp_path):
    assert trainer_module.label_shift(tiny_llama()) == 1
    items = byte_chunks(TEXT, 32, 8)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=80, per_device_train_batch_size=8,
                             learning_rate=1e-2, warmup_steps=5, logging_steps=10, save_strategy="no",
                             disable_tqdm=True)
    trainer = Trainer(tiny_llama(), args, train_dataset=items, data_collator=CAUSAL)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[0] > 3.5  # about ln(128) = 4.85 at the start
    assert losses[-1] < 0.5 * losses[0], losses


def _run(tmp_path, name, batch, accum, items):
    model = tiny_llama()
    args = TrainingArguments(output_dir=str(tmp_path / name), max_steps=4, per_device_train_batch_size=batch,
                             gradient_accumulation_steps=accum, learning_rate=3e-3, warmup_steps=1,
                             save_strategy="no", disable_tqdm=True, seed=3)
    Trainer(model, args, train_dataset=items, data_collator=CAUSAL).train()
    return weights(model)


def test_causal_accumulation_counts_shifted_labels(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    ids = list(TEXT.encode("ascii"))
    items = []
    for _ in range(32):  # 2 to 30 tokens: micro-batches hold very different label counts
        n, start = int(torch.randint(2, 31, (1,), generator=g)), int(torch.randint(0, 200, (1,), generator=g))
        items.append({"input_ids": ids[start:start + n]})
    big = _run(tmp_path, "big", 8, 1, items)
    acc = _run(tmp_path, "acc", 2, 4, items)
    assert max_weight_diff(big, acc) <= 1e-6
    monkeypatch.setattr(trainer_module, "label_shift", lambda model: 0)  # counting unshifted labels is off
    unshifted = _run(tmp_path, "unshifted", 2, 4, items)
    assert max_weight_diff(big, unshifted) > 1e-5
