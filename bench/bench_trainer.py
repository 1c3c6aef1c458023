"""loom.Trainer vs transformers.Trainer: training steps/s and peak RSS on one tiny-BERT task.

Both train the same BertForSequenceClassification (the same saved random weights: hidden 128,
2 layers, 2 heads, vocabulary 1,000) on the same 4,096 synthetic sequences of 64 tokens,
batch 32, AdamW, linear schedule, no evaluation, no checkpoints, logging every 50 steps,
no progress bar, 2 torch threads. Each run is a fresh interpreter (neither library inherits
the other's imports); the libraries alternate and the median of --runs is reported. The
table goes into BENCHMARKS.md between this script's markers.

    .venv/bin/python bench/bench_trainer.py            # --runs 3 --steps 200; --no-write
    .venv/bin/python bench/bench_trainer.py --accum 4  # also: gradient accumulation 4 x 8

Benchmarks are measurements, never tests: nothing here fails on a slow number.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import write_section  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- bench_trainer:begin -->", "<!-- bench_trainer:end -->"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
MIB = 2**20

MAKE_MODEL = """
import torch, transformers
torch.manual_seed(0)
cfg = transformers.BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=512, max_position_embeddings=128, num_labels=4)
transformers.BertForSequenceClassification(cfg).save_pretrained({folder!r})
"""

# One training run in a child interpreter; prints "RESULT <json>".
CHILD = """
import json, resource, sys, time
import torch
torch.set_num_threads(2)
FOLDER, OUT, STEPS, BATCH, ACCUM = {folder!r}, {out!r}, {steps}, {batch}, {accum}
g = torch.Generator().manual_seed(0)
ids = torch.randint(5, 1000, (4096, 64), generator=g)
data = [{{"input_ids": ids[i].tolist(), "attention_mask": [1] * 64, "labels": int(ids[i, 1] % 4)}}
        for i in range(len(ids))]
common = dict(output_dir=OUT, max_steps=STEPS, per_device_train_batch_size=BATCH,
              gradient_accumulation_steps=ACCUM, learning_rate=1e-4, weight_decay=0.01, warmup_steps=10,
              logging_steps=50, save_strategy="no", report_to="none", disable_tqdm=True, seed=0,
              dataloader_num_workers=0)
t0 = time.perf_counter()
if {lib!r} == "loom":
    from loom import BertForSequenceClassification, Trainer, TrainingArguments
    args = TrainingArguments(**common)
else:
    from transformers import BertForSequenceClassification, Trainer, TrainingArguments
    args = TrainingArguments(**common, use_cpu=True)
model = BertForSequenceClassification.from_pretrained(FOLDER)
trainer = Trainer(model=model, args=args, train_dataset=data)
ready = time.perf_counter() - t0
t, cpu = time.perf_counter(), time.process_time()
out = trainer.train()
seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
losses = [h["loss"] for h in trainer.state.log_history if "loss" in h] or [out.training_loss]
print("RESULT " + json.dumps(dict(seconds=seconds, cpu=cpu, ready=ready, peak=peak, steps=trainer.state.global_step,
                                   first_loss=losses[0], last_loss=losses[-1])), flush=True)
"""


def child(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT,
                          timeout=1800)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"child failed:\n{done.stderr[-3000:]}")


def measure(runs: int, steps: int, batch: int, accum: int) -> dict[str, list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(Path(tmp) / "tiny-bert")
        subprocess.run([sys.executable, "-c", MAKE_MODEL.format(folder=folder)], check=True, env=ENV)
        results: dict[str, list[dict]] = {"loom": [], "transformers": []}
        for i in range(runs):
            for lib in (("loom", "transformers") if i % 2 == 0 else ("transformers", "loom")):
                code = CHILD.format(folder=folder, out=str(Path(tmp) / f"out-{lib}-{i}"), steps=steps,
                                    batch=batch, accum=accum, lib=lib)
                r = child(code)
                results[lib].append(r)
                print(f"  run {i + 1} {lib:>12}: {steps / r['seconds']:6.2f} steps/s, peak RSS "
                      f"{r['peak'] / MIB:6.0f} MiB, loss {r['first_loss']:.3f} -> {r['last_loss']:.3f}", flush=True)
    return results


def table(results: dict[str, list[dict]], steps: int, batch: int, accum: int) -> list[str]:
    med = {lib: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "cpu", "ready", "peak", "last_loss")}
           for lib, rs in results.items()}
    sps = {lib: steps / m["seconds"] for lib, m in med.items()}
    label = f"batch {batch}" + (f" x {accum} accumulated" if accum > 1 else "")
    return [
        f"| {label}, {steps} steps | loom | transformers | loom / transformers |",
        "|---|---:|---:|---:|",
        f"| training steps/s | {sps['loom']:.2f} | {sps['transformers']:.2f} | "
        f"**{sps['loom'] / sps['transformers']:.2f}x** |",
        f"| train() wall time (s) | {med['loom']['seconds']:.1f} | {med['transformers']['seconds']:.1f} | |",
        f"| CPU time per step (ms, both threads) | {1000 * med['loom']['cpu'] / steps:.0f} | "
        f"{1000 * med['transformers']['cpu'] / steps:.0f} | "
        f"{med['loom']['cpu'] / med['transformers']['cpu']:.2f}x |",
        f"| import + load + Trainer() (s) | {med['loom']['ready']:.2f} | {med['transformers']['ready']:.2f} | |",
        f"| peak RSS (MiB) | {med['loom']['peak'] / MIB:.0f} | {med['transformers']['peak'] / MIB:.0f} | "
        f"{med['loom']['peak'] / med['transformers']['peak']:.2f}x |",
        f"| final logged loss | {med['loom']['last_loss']:.3f} | {med['transformers']['last_loss']:.3f} | |",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--accum", type=int, default=0, help="also measure batch 32/N x N accumulated")
    ap.add_argument("--example", default=None, help="JSON written by examples/finetune_minilm.py --json")
    ap.add_argument("--no-write", action="store_true")
    o = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} (other work on the machine slows both libraries alike)")
    rows = table(measure(o.runs, o.steps, 32, 1), o.steps, 32, 1)
    if o.accum > 1:
        rows += [""] + table(measure(o.runs, o.steps, 32 // o.accum, o.accum), o.steps, 32 // o.accum, o.accum)
    import torch
    import transformers
    head = [
        "## Training (`bench/bench_trainer.py`)",
        "",
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, 2 torch "
        f"threads, torch {torch.__version__}, transformers {transformers.__version__}; load average {load:.1f} at "
        f"the start; median of {o.runs} alternating runs, each in a fresh interpreter. Tiny BERT (hidden 128, 2 "
        "layers), 4,096 synthetic sequences of 64 tokens, AdamW + linear schedule, no eval or checkpoints.",
        "",
        *rows,
    ]
    if o.example:
        head += ["", *example_rows(json.loads(Path(o.example).read_text()))]
    body = "\n".join(head)
    print(body)
    if not o.no_write:
        write_section(BEGIN, END, body)


def example_rows(r: dict) -> list[str]:
    return [
        "### Real fine-tuning: `examples/finetune_minilm.py`",
        "",
        f"all-MiniLM-L6-v2 fine-tuned for {r['topics']}-topic sentence classification on {r['train_sentences']} "
        f"generated training sentences; the {r['test_sentences']} test sentences use templates and phrases never "
        "seen in training.",
        "",
        "| test accuracy: random head | bag-of-words baseline | **fine-tuned** | epochs (steps) | training wall "
        "time | threads | load average |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['accuracy_before']:.3f} | {r.get('word_overlap_baseline', float('nan')):.3f} | "
        f"**{r['accuracy_after']:.3f}** | {r['epochs']:g} ({r['steps']}) | {r['train_seconds']:.0f} s | "
        f"{r['threads']} | {r.get('load_average', float('nan')):.1f} |",
    ]


if __name__ == "__main__":
    main()
