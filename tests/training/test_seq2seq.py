"""The Trainer on a tiny T5 (loom's own, from scratch): DataCollatorForSeq2Seq builds the
decoder inputs from the labels, the loss falls on a copy task, and the trained model's
greedy generate() reproduces a training target."""

from __future__ import annotations

import torch

import loom
from loom.training import DataCollatorForSeq2Seq, Trainer, TrainingArguments


def tiny_t5(seed=0):
    torch.manual_seed(seed)
    config = loom.T5Config(vocab_size=40, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                           decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return loom.T5ForConditionalGeneration(config)


def copy_task(n=64, seed=0):
    """Copy a short sequence of ids 2..39, ended by eos (1)."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        ids = torch.randint(2, 40, (int(torch.randint(3, 7, (1,), generator=g)),), generator=g).tolist()
        items.append({"input_ids": ids + [1], "labels": ids + [1]})
    return items


def test_t5_learns_to_copy_with_the_seq2seq_collator(tmp_path):
    model = tiny_t5()
    collator = DataCollatorForSeq2Seq(model=model, pad_token_id=0)
    items = copy_task()
    batch = collator(items[:3])
    assert torch.equal(batch["decoder_input_ids"], model.prepare_decoder_input_ids_from_labels(batch["labels"]))
    assert (batch["decoder_input_ids"][:, 0] == 0).all() and (batch["labels"] == -100).any()
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=300, per_device_train_batch_size=16,
                             learning_rate=3e-3, warmup_steps=10, logging_steps=25, save_strategy="no",
                             disable_tqdm=True, seed=0)
    trainer = Trainer(model, args, train_dataset=items, data_collator=collator)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[0] > 2.5  # about ln(40) = 3.7 at the start
    assert losses[-1] < 0.3 * losses[0], losses
    model.eval()
    hits = 0
    for item in items[:8]:
        out = model.generate(torch.tensor([item["input_ids"]]), max_new_tokens=8)
        hits += out[0, 1:len(item["labels"]) + 1].tolist() == item["labels"]
    assert hits >= 4, hits
