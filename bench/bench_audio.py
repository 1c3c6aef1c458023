"""loom vs transformers: Whisper log-mel features (WhisperFeatureExtractor), in one run.

Workloads, 16 kHz float32 speech-like clips (harmonics with a moving pitch plus noise):
1. 64 clips of random length 5-30 s, each padded to 30 s (the shape of real ASR batches);
2. 64 clips of exactly 30 s (no padding: the STFT of every frame is computed);
3. one 10 s clip (per-call latency).

transformers 5.24 runs its default path: `torch.stft` on the whole batch (it takes it whenever
torch is installed), with 2 torch threads. Its NumPy path (what it does without torch, a Python
loop over frames) is timed too, for workload 1. loom is NumPy only: float32 FFTs a block of
frames at a time, frames made only of padding computed once, clips on 2 threads (its default
here, the usable cores) and on 1.

Each library runs in its own worker process, set up once, then asked for one timed call at a
time in turn, so both see the same machine load; a call during which other processes took
more than a tenth of the machine is timed again (up to twice). Medians are reported; outputs
are compared in the same run. The table is printed and written into BENCHMARKS.md between
this script's markers.

    .venv/bin/python bench/bench_audio.py        # --runs 7; --no-write only prints

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
THREADS = 2
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
BEGIN, END = "<!-- bench_audio:begin -->", "<!-- bench_audio:end -->"
RETRIES = 2  # a call disturbed by other processes is timed again at most this often
WORKLOADS = {
    "mixed": "64 clips of 5-30 s (padded to 30 s)",
    "full": "64 clips of 30 s",
    "single": "1 clip of 10 s",
}

PRELUDE = """
import json, sys, time
import numpy as np
def report(**kw): print("RESULT " + json.dumps(kw), flush=True)
def steps():
    for _ in sys.stdin:
        yield

def clip(n, seed, rate=16000):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    phase = 2 * np.pi * np.cumsum(120 + 80 * np.sin(2 * np.pi * 0.7 * t + seed)) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.3 + 0.25 * np.sin(2 * np.pi * 2.3 * t))
    return (0.5 * x + 0.01 * rng.standard_normal(n)).astype(np.float32)

rng = np.random.default_rng(0)
workload = {workload!r}
if workload == "mixed":
    clips = [clip(int(rng.uniform(5, 30) * 16000), i) for i in range(64)]
elif workload == "full":
    clips = [clip(480000, i) for i in range(64)]
else:
    clips = [clip(160000, 0)]
"""

WORKER = PRELUDE + """
lib = {lib!r}
if lib.startswith("loom"):
    from loom.models.whisper.feature_extraction import WhisperFeatureExtractor
    fe = WhisperFeatureExtractor()
    threads = 1 if lib == "loom-1" else None
    call = lambda: fe(clips, sampling_rate=16000, return_tensors="np", num_threads=threads)
else:
    import torch
    torch.set_num_threads({threads})
    import transformers
    fe = transformers.WhisperFeatureExtractor()
    if lib == "transformers-numpy":
        fe._torch_extract_fbank_features = fe._np_extract_fbank_features
    call = lambda: fe(clips, sampling_rate=16000, return_tensors="np")
report(ready=True, torch_loaded="torch" in sys.modules)
for _ in steps():
    t, cpu = time.perf_counter(), time.process_time()
    out = call()["input_features"]
    s, cpu = time.perf_counter() - t, time.process_time() - cpu
    np.save({out_path!r}, out)
    report(s=s, cpu=cpu, shape=list(out.shape))
"""


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (Linux /proc/stat)."""
    user, nice, system, _, _, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_workers(codes: dict[str, str], warmup: int, runs: int) -> tuple[dict[str, list], dict[str, dict], int]:
    """One worker per entry, asked for one timed call in turn (order flipped every round)."""
    procs = {name: subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=tempfile.TemporaryFile(), text=True, env=ENV, cwd=ROOT)
             for name, code in codes.items()}

    def result(proc) -> dict:
        for line in proc.stdout:
            if line.startswith("RESULT "):
                return json.loads(line.removeprefix("RESULT "))
        proc.stderr.seek(0)
        raise RuntimeError(f"benchmark worker failed:\n{proc.stderr.read()[-3000:].decode()}")

    names = list(codes)
    try:
        ready = {name: result(proc) for name, proc in procs.items()}
        out, retried = {name: [] for name in names}, 0
        for i in range(warmup + runs):
            for name in names if i % 2 else names[::-1]:
                for attempt in range(RETRIES + 1):
                    busy = busy_seconds()
                    procs[name].stdin.write("step\n")
                    procs[name].stdin.flush()
                    res = result(procs[name])
                    foreign = busy_seconds() - busy - res["cpu"]
                    if i < warmup or foreign < 0.1 * os.cpu_count() * res["s"] or attempt == RETRIES:
                        break
                    retried += 1
                if i >= warmup:
                    out[name].append(res)
        return out, ready, retried
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()


def median_s(samples: list[dict]) -> float:
    return statistics.median(x["s"] for x in samples)


def bench(workload: str, runs: int, tmp: Path):
    import numpy as np

    # one clip runs inline whatever num_threads says, so it has no one-thread row
    libs = ["loom"] + (["loom-1"] if workload != "single" else []) + ["transformers"] + \
        (["transformers-numpy"] if workload == "mixed" else [])
    outs = {lib: tmp / f"{workload}-{lib}.npy" for lib in libs}
    codes = {lib: WORKER.format(workload=workload, lib=lib, threads=THREADS, out_path=str(outs[lib]))
             for lib in libs}
    res, ready, retried = run_workers(codes, warmup=1, runs=runs)
    ms = {lib: 1000 * median_s(v) for lib, v in res.items()}
    ref = np.load(outs["transformers"])
    diff = {lib: float(np.abs(np.load(outs[lib]) - ref).max()) for lib in libs if lib != "transformers"}
    label = WORKLOADS[workload]
    rows = [(f"{label}, ms per call", ms["loom"], ms["transformers"], ">=", 1.5 if workload == "mixed" else None)]
    if "loom-1" in ms:
        rows.append((f"{label}, loom on 1 thread, ms per call", ms["loom-1"], ms["transformers"], None, None))
    if "transformers-numpy" in ms:
        rows.append((f"{label}, vs transformers' NumPy path, ms per call", ms["loom"], ms["transformers-numpy"],
                     None, None))
    assert not ready["loom"]["torch_loaded"], "loom's features must not import torch"
    loom_diff = max(v for k, v in diff.items() if k.startswith("loom"))
    numpy_path = (f" (transformers' NumPy path vs its torch path: {diff['transformers-numpy']:.1e})"
                  if "transformers-numpy" in diff else "")
    note = (f"{label}: output {res['loom'][0]['shape']}, max abs difference of loom's features to transformers' "
            f"{loom_diff:.1e}{numpy_path}; {retried} calls timed again because other processes were busy.")
    return rows, [note]


def fmt(v) -> str:
    return f"{v:.1f}" if v < 1000 else f"{v:,.0f}"


def table(rows) -> str:
    """Times, so the ratio is transformers / loom (the speed-up)."""
    lines = ["| metric | loom | transformers | speed-up | target | met? |", "|---|---:|---:|---:|---|---|"]
    for metric, ours, theirs, kind, goal in rows:
        speedup = theirs / ours
        target = "—" if goal is None else f">= {goal}x"
        met = "—" if goal is None else ("yes" if speedup >= goal else "no")
        lines.append(f"| {metric} | {fmt(ours)} | {fmt(theirs)} | {speedup:.2f}x | {target} | {met} |")
    return "\n".join(lines)


def machine() -> str:
    import numpy
    import torch
    import transformers

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return (f"{os.cpu_count()} CPUs (`nproc`), {cpu}, {platform.system()} {platform.machine()}; "
            f"Python {platform.python_version()}, NumPy {numpy.__version__}, torch {torch.__version__}, "
            f"transformers {transformers.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="timed runs per measurement (median)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args()
    load_avg = os.getloadavg()[0]
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for workload in WORKLOADS:
            r, n = bench(workload, args.runs, Path(tmp))
            rows += r
            notes += n
    notes.append("transformers runs its default path, `torch.stft` over the whole padded batch "
                 f"(torch is installed), with {THREADS} torch threads; its NumPy path loops over frames in "
                 "Python. loom never imports torch here: float32 `numpy.fft.rfft` on blocks of 128 frames, "
                 "the mel projection as small banded matrix products, frames made only of padding computed "
                 f"once per clip, clips spread over {THREADS} threads (`num_threads`; values never depend "
                 "on it). The padding shortcut is why the mixed-length batch gains more than the full one.")
    notes.append(f"Load average when the run started: {load_avg:.2f}, when it ended: {os.getloadavg()[0]:.2f}, "
                 f"on {os.cpu_count()} CPUs shared with other jobs; a busy machine hurts the 2-thread rows most.")
    body = "\n".join([
        "## Audio: Whisper log-mel features, loom vs transformers",
        "",
        f"Measured {datetime.date.today().isoformat()} on {machine()}.",
        f"Reproduce: `.venv/bin/python bench/bench_audio.py` (medians of {args.runs} runs, libraries "
        f"alternating call by call in separate worker processes; speed-up = transformers time / loom time).",
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
