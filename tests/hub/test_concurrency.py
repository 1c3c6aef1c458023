"""Four processes loading one repo into one cache at once all succeed, and the cache holds one
copy of each file: huggingface_hub's file locks let one process download while the others wait."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.hub.conftest import logits, repo_files, tiny_model, tiny_tokenizer

LOAD = """
import json, sys, torch
import loom
model = loom.AutoModelForMaskedLM.from_pretrained("acme/tiny", cache_dir=sys.argv[1])
tok = loom.AutoTokenizer.from_pretrained("acme/tiny", cache_dir=sys.argv[1])
batch = tok(["the big cat sat on a red mat."], return_tensors="pt")
with torch.no_grad():
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
print(json.dumps(out.flatten().tolist()))
"""


def test_four_processes_share_one_cache(hub, tmp_path):
    model, tokenizer = tiny_model(), tiny_tokenizer(tmp_path / "tok")
    files = repo_files(model, tokenizer, tmp_path)
    hub.add_commit("acme/tiny", files)
    hub.slow(0.5, times=None, match="GET /lfs-cdn")  # the weights download overlaps the others' turns
    cache = tmp_path / "cache"
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    procs = [subprocess.Popen([sys.executable, "-c", LOAD, str(cache)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in results]
    expected = logits(model, tokenizer).flatten()
    for out, _ in results:
        assert torch.allclose(torch.tensor(json.loads(out)), expected, atol=1e-6, rtol=0)

    storage = cache / "models--acme--tiny"
    blobs = sorted(p.name for p in (storage / "blobs").iterdir())
    snapshot = storage / "snapshots" / hub.commit_of("acme/tiny").oid
    linked = sorted(os.path.basename(os.readlink(p)) for p in snapshot.iterdir())
    assert blobs == sorted(set(linked)) and len(blobs) == len(linked)  # one blob per file, no leftovers
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(
        ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
    assert len(hub.requests("GET /lfs-cdn")) == 1, "the weights were downloaded once"
    assert not list(storage.rglob("*.incomplete"))
