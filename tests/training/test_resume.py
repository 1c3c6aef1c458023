"""Exact resume: a run stopped at step k and resumed from its last checkpoint ends with the
weights of the run never stopped, bit for bit (CPU, fp32), without replaying the loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from loom import CheckpointError, ConfigError, InputError
from loom.training import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments
from loom.training import checkpoint as ckpt
from loom.training import loader
from tests.training.common import MASK, PAD, VOCAB, text_items, tiny_bert, weights, weights_equal

ROOT = Path(__file__).resolve().parents[2]
MLM = DataCollatorForLanguageModeling(pad_token_id=PAD, mask_token_id=MASK, vocab_size=VOCAB,
                                      special_token_ids=[0, 1, 2, 3])


class Crash(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"stopped at step {self.step}")


def run(out, *, callbacks=(), resume=None, **kw):
    """Masked LM with dropout (the RNG matters), random masking (the collator's RNG matters),
    accumulation 2 over 10 batches an epoch (the last window of an epoch is partial)."""
    model = tiny_bert("BertForMaskedLM")  # dropout 0.1
    values = dict(output_dir=str(out), num_train_epochs=3, per_device_train_batch_size=4,
                  gradient_accumulation_steps=3, learning_rate=3e-3, weight_decay=0.01, warmup_ratio=0.2,
                  lr_scheduler_type="cosine", save_steps=3, logging_steps=2, seed=5, disable_tqdm=True)
    values.update(kw)
    trainer = Trainer(model, TrainingArguments(**values), train_dataset=text_items(37, seed=2), data_collator=MLM,
                      callbacks=list(callbacks))
    trainer.train(resume_from_checkpoint=resume)
    return model, trainer


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    full, full_trainer = run(tmp_path / "full")
    assert full_trainer.state.global_step == 12  # 4 steps an epoch (3 + 3 + 3 + 1 batches)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", callbacks=[Crash(8)])
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "cut")] == ["checkpoint-3", "checkpoint-6"]
    fetched = []
    original = loader.SeededBatches.__getitems__
    monkeypatch.setattr(loader.SeededBatches, "__getitems__", lambda self, key: fetched.append(key[1]) or original(self, key))
    resumed, resumed_trainer = run(tmp_path / "cut", resume=True)
    assert weights_equal(weights(full), weights(resumed))
    # Checkpoint-6 is mid-epoch (epoch 1, after 6 of 10 batches): 4 + 10 batches were left to
    # read, and the first one read is batch 6 of epoch 1's order: nothing was replayed.
    assert ckpt.load_trainer_state(tmp_path / "cut" / "checkpoint-6")["data_batch"] == 6
    assert len(fetched) == 14 and fetched[0] == loader.epoch_order(37, 5, 1)[24:28]
    losses = lambda t: [(h["step"], h["loss"]) for h in t.state.log_history if "loss" in h]  # noqa: E731
    assert losses(resumed_trainer) == losses(full_trainer)
    # The log file reads as one run: the stopped run's lines past step 6 were dropped.
    logged = lambda out: [(x["step"], x["loss"]) for x in map(json.loads, (out / "log.jsonl").read_text().splitlines())  # noqa: E731
                          if "loss" in x]
    assert logged(tmp_path / "cut") == logged(tmp_path / "full") == losses(full_trainer)


def test_resume_from_an_epoch_end_checkpoint(tmp_path):
    full, _ = run(tmp_path / "full", save_steps=4)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", save_steps=4, callbacks=[Crash(5)])
    state = ckpt.load_trainer_state(tmp_path / "cut" / "checkpoint-4")
    assert (state["data_epoch"], state["data_batch"]) == (0, 10)  # after the last batch of epoch 0
    resumed, _ = run(tmp_path / "cut", save_steps=4, resume=str(tmp_path / "cut" / "checkpoint-4"))
    assert weights_equal(weights(full), weights(resumed))


def test_loader_workers_give_the_same_run(tmp_path):
    a, _ = run(tmp_path / "a", max_steps=3, save_strategy="no")
    b, _ = run(tmp_path / "b", max_steps=3, save_strategy="no", dataloader_num_workers=2)
    assert weights_equal(weights(a), weights(b))


def worker(out, *flags):
    cmd = [sys.executable, "-m", "tests.training.dist_worker", str(out), "--batch", "4", "--accum", "2",
           "--dropout", "0.1", *flags]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_killed_process_resumes_exactly(tmp_path):
    whole = worker(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = worker(tmp_path / "cut", "--kill-at", "4")
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL right after checkpoint-4
    assert not (tmp_path / "cut" / "final").exists()
    assert sorted(p.name for p in (tmp_path / "cut").iterdir() if "checkpoint" in p.name) == ["checkpoint-2", "checkpoint-4"]
    again = worker(tmp_path / "cut", "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    a = load_file(tmp_path / "whole" / "final" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "final" / "model.safetensors")
    assert weights_equal(a, b)


def test_a_failed_save_leaves_no_checkpoint(tmp_path, monkeypatch):
    real_save = torch.save

    def failing(obj, path, *a, **kw):
        if str(path).endswith("scheduler.pt"):
            raise OSError("disk full")
        return real_save(obj, path, *a, **kw)

    monkeypatch.setattr(ckpt.torch, "save", failing)
    with pytest.raises(OSError, match="disk full"):
        run(tmp_path / "out", max_steps=3, save_steps=3)
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name != "log.jsonl"] == []  # no checkpoint, no temp


def test_resume_errors(tmp_path):
    with pytest.raises(InputError, match="holds no checkpoint-N folder"):
        run(tmp_path / "empty", resume=True)
    (tmp_path / "not_ckpt").mkdir()
    with pytest.raises(CheckpointError, match="not a Trainer checkpoint"):
        run(tmp_path / "x", resume=str(tmp_path / "not_ckpt"))
    run(tmp_path / "one", max_steps=3)
    with pytest.raises(ConfigError, match="per_device_train_batch_size=4, these arguments say 2"):
        run(tmp_path / "one", max_steps=6, per_device_train_batch_size=2, resume=True)
