"""Hub round trip: loom vs transformers / huggingface_hub against the test Hub server.

A tiny BERT with its tokenizer is published on `tests/hub_server.py` (real HTTP on 127.0.0.1);
each library then loads model + tokenizer in a fresh process (HF_ENDPOINT set before import),
cold (empty cache), warm by branch name and warm by commit, and the server counts the HTTP
requests of each load. A 200 MB file is then downloaded cold by `loom.hub.resolve` (which
checks its sha256) and `huggingface_hub.hf_hub_download` (which checks its size). Medians of
--runs. The table goes into BENCHMARKS.md between this script's markers.

    .venv/bin/python bench/bench_hub.py [--runs 3] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
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
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
BEGIN, END = "<!-- bench_hub:begin -->", "<!-- bench_hub:end -->"

LOAD = {
    "loom": "import loom as L\nm = L.AutoModelForMaskedLM.from_pretrained(R, revision=V, cache_dir=C)\n"
            "t = L.AutoTokenizer.from_pretrained(R, revision=V, cache_dir=C)\n",
    "transformers": "import transformers as L\nm = L.AutoModelForMaskedLM.from_pretrained(R, revision=V, cache_dir=C)\n"
                    "t = L.AutoTokenizer.from_pretrained(R, revision=V, cache_dir=C)\n",
}
TIMED = "import sys, time\nR, V, C = sys.argv[1], sys.argv[2], sys.argv[3]\n{imports}t0 = time.perf_counter()\n{load}" \
        "print(time.perf_counter() - t0)\n"


def publish(hub, tmp: Path) -> str:
    import torch

    import loom

    torch.manual_seed(0)
    config = loom.BertConfig(vocab_size=30, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64)
    folder = tmp / "files"
    loom.BertForMaskedLM(config).save_pretrained(folder)
    (tmp / "tok").mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(25)]
    (tmp / "tok" / "vocab.txt").write_text("\n".join(words) + "\n")
    loom.Tokenizer.from_pretrained(tmp / "tok").save_pretrained(folder)
    return hub.add_commit("acme/tiny", {p.name: p.read_bytes() for p in folder.iterdir()})


def load_once(lib: str, hub, revision: str, cache: Path, env: dict) -> tuple[float, int]:
    imports = (f"import torch, {lib}\n{lib}.BertForMaskedLM, {lib}.AutoModelForMaskedLM, {lib}.AutoTokenizer\n"
               + ("transformers.BertTokenizerFast, transformers.BertConfig\n" if lib == "transformers" else ""))
    code = TIMED.format(imports=imports, load=LOAD[lib])
    hub.clear_log()
    out = subprocess.run([sys.executable, "-c", code, "acme/tiny", revision, str(cache)], env=env,
                         capture_output=True, text=True, check=True)
    requests = [r for r in hub.requests() if "agent-harnesses" not in r.path]  # hf's telemetry, once a day
    return float(out.stdout.strip().splitlines()[-1]), len(requests)


def measure_loads(hub, oid: str, runs: int, env: dict) -> dict:
    rows = {}
    for lib in ("loom", "transformers"):
        samples = {"cold": [], "warm branch": [], "warm commit": []}
        for _ in range(runs):
            cache = Path(tempfile.mkdtemp()) / "cache"
            samples["cold"].append(load_once(lib, hub, "main", cache, env))
            samples["warm branch"].append(load_once(lib, hub, "main", cache, env))
            samples["warm commit"].append(load_once(lib, hub, oid, cache, env))
        rows[lib] = {k: (statistics.median(s for s, _ in v), statistics.median(n for _, n in v))
                     for k, v in samples.items()}
    return rows


def measure_download(hub, runs: int) -> dict:
    from huggingface_hub import hf_hub_download

    from loom import hub as loom_hub

    data = os.urandom(200 * 1024 * 1024)
    hub.add_commit("acme/big", {"model.safetensors": data})
    calls = {"loom": lambda d: loom_hub.resolve("acme/big", "model.safetensors", cache_dir=d),
             "transformers": lambda d: hf_hub_download("acme/big", "model.safetensors", cache_dir=d,
                                                       endpoint=hub.url)}
    out = {}
    for lib, fn in calls.items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn(tempfile.mkdtemp())
            times.append(time.perf_counter() - start)
        out[lib] = statistics.median(times)
    return out


def table(loads: dict, download: dict, runs: int, load_avg: float) -> str:
    import huggingface_hub
    import transformers

    lines = [
        "## Hub round trip: loading from a Hub, loom vs transformers", "",
        f"Measured {datetime.date.today()} on {os.cpu_count()} CPUs, {platform.system()} {platform.machine()};"
        f" Python {platform.python_version()}, transformers {transformers.__version__}, huggingface_hub"
        f" {huggingface_hub.__version__}. Reproduce: `.venv/bin/python bench/bench_hub.py` (medians of {runs}"
        " runs; each load in a fresh process; the Hub is `tests/hub_server.py` on 127.0.0.1).", "",
        "| load of a tiny BERT + tokenizer | loom s | loom requests | transformers s | transformers requests |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in ("cold", "warm branch", "warm commit"):
        a, b = loads["loom"][kind], loads["transformers"][kind]
        lines.append(f"| {kind} | {a[0]:.3f} | {a[1]:.0f} | {b[0]:.3f} | {b[1]:.0f} |")
    lines += [
        "", "| 200 MB file, cold cache | loom.hub.resolve | huggingface_hub.hf_hub_download |",
        "|---|---:|---:|",
        f"| seconds (MB/s) | {download['loom']:.2f} ({200 / download['loom']:.0f}) |"
        f" {download['transformers']:.2f} ({200 / download['transformers']:.0f}) |", "",
        "- Requests are counted by the server: HEAD, GET and API calls of the load (huggingface_hub's"
        " once-a-day telemetry request left out). Seconds exclude `import torch` and the model and"
        " tokenizer classes' imports (both libraries import lazily). transformers imports"
        " huggingface_hub with its classes, before the timer; loom imports it on its first network"
        " use, inside the timed load (about 0.4 s here), and not at all for a cached commit.",
        "- loom checks each download's sha256 / git sha1 against the Hub's metadata before it enters"
        " the cache; hf_hub_download checks the size.",
        f"- Load average when the run started: {load_avg:.2f}.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    o = ap.parse_args()
    load_avg = os.getloadavg()[0]
    os.environ["HF_HUB_DISABLE_XET"] = "1"  # the test server speaks LFS
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from tests.hub_server import HubServer

    with HubServer() as hub, tempfile.TemporaryDirectory() as tmp:
        os.environ["HF_ENDPOINT"] = hub.url
        oid = publish(hub, Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        loads = measure_loads(hub, oid, o.runs, env)
        download = measure_download(hub, o.runs)
    body = table(loads, download, o.runs, load_avg)
    print(body)
    if not o.no_write:
        write_section(BEGIN, END, body)


if __name__ == "__main__":
    main()
