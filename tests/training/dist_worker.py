"""Worker launched by the distributed and kill-and-resume tests (with or without torchrun).

    python -m tests.training.dist_worker OUT --batch B [--accum A] [--steps N] [--fsdp]
        [--kill-at K] [--resume]

Trains a tiny BERT classifier on synthetic data with a fixed global batch and writes the
final weights to OUT/final (rank 0). Every rank records, with an audit hook, each file it
opens for writing or creates under OUT, and prints them as "WRITES <rank> <json>".
With --kill-at K the process SIGKILLs itself right after checkpoint-K is written.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from loom.training import Trainer, TrainerCallback, TrainingArguments, distributed  # noqa: E402
from loom.training.data import DataCollatorWithPadding  # noqa: E402
from tests.training.common import PAD, tiny_bert, topic_items  # noqa: E402


def watch_writes(out: Path) -> list[str]:
    """Audit-hook record of writes under `out` by this process."""
    seen: list[str] = []
    root = str(out.resolve())

    def hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path, mode = os.fsdecode(args[0]), args[1] or "r"
            flags = args[2] if len(args) > 2 else 0
            writing = any(c in str(mode) for c in "wax+") or (isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR))
            if writing and os.path.abspath(path).startswith(root):
                seen.append(path)
        elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "shutil.rmtree") and args:
            path = os.fsdecode(args[0]) if isinstance(args[0], (str, bytes, os.PathLike)) else ""
            if os.path.abspath(path).startswith(root):
                seen.append(f"{event}:{path}")

    sys.addaudithook(hook)
    return seen


class KillAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--accum", type=int, default=1)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--fsdp", action="store_true")
    p.add_argument("--kill-at", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--dropout", type=float, default=0.0)
    o = p.parse_args()
    torch.set_num_threads(1)
    out = Path(o.out)
    rank = int(os.environ.get("RANK", "0"))
    writes = watch_writes(out)
    model = tiny_bert(hidden_dropout_prob=o.dropout, attention_probs_dropout_prob=o.dropout)
    args = TrainingArguments(
        output_dir=str(out), max_steps=o.steps, per_device_train_batch_size=o.batch,
        gradient_accumulation_steps=o.accum, learning_rate=2e-3, weight_decay=0.01, warmup_steps=2,
        logging_steps=2, save_steps=2, seed=7, disable_tqdm=True, fsdp=o.fsdp)
    callbacks = [KillAt(o.kill_at)] if o.kill_at else []
    trainer = Trainer(model, args, train_dataset=topic_items(40, seed=3),
                      data_collator=DataCollatorWithPadding(pad_token_id=PAD), callbacks=callbacks)
    trainer.train(resume_from_checkpoint=True if o.resume else None)
    trainer.save_model(str(out / "final"))
    # 7 items over 2 ranks: uneven shards, put back in dataset order on every rank.
    predicted = trainer.predict(topic_items(7, seed=9))
    if rank == 0:
        import numpy as np

        np.save(out / "final" / "predictions.npy", predicted.predictions)
        np.save(out / "final" / "label_ids.npy", predicted.label_ids)
    print(f"WRITES {rank} " + json.dumps(writes), flush=True)
    state = trainer.dist
    del trainer, model  # FSDP's device mesh holds the process group: release it while Python is alive
    distributed.cleanup(state)


if __name__ == "__main__":
    main()
