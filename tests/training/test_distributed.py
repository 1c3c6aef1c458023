"""`torchrun --nproc_per_node=2` on CPU (gloo): the same final weights as one process with the
same global batch, only rank 0 writes, and a killed 2-process run resumes exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

import loom
from tests.training.common import max_weight_diff, weights_equal

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def launch(out: Path, *flags: str, procs: int = 2) -> subprocess.CompletedProcess:
    script = str(ROOT / "tests" / "training" / "dist_worker.py")
    if procs == 1:
        cmd = [sys.executable, script, str(out), *flags]
    else:
        cmd = [str(TORCHRUN), "--standalone", f"--nproc_per_node={procs}", script, str(out), *flags]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=ENV)


def final_weights(out: Path):
    return load_file(out / "final" / "model.safetensors")


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    done = launch(out, "--batch", "8", procs=1)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def check_only_rank0_wrote(done: subprocess.CompletedProcess) -> None:
    reports = dict(line.split(" ", 2)[1:] for line in done.stdout.splitlines() if line.startswith("WRITES "))
    assert sorted(reports) == ["0", "1"], done.stdout[-2000:]
    assert json.loads(reports["1"]) == []  # rank 1 wrote or created nothing under output_dir
    assert any(w.endswith("config.json") for w in json.loads(reports["0"]))  # the hook does see writes


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_match_one(tmp_path, single, mode):
    flags = ["--batch", "4"] + (["--fsdp"] if mode == "fsdp" else [])
    done = launch(tmp_path, *flags)
    assert done.returncode == 0, done.stderr[-3000:]
    diff = max_weight_diff(final_weights(single), final_weights(tmp_path))
    assert diff <= 1e-5, diff
    check_only_rank0_wrote(done)
    predictions = [np.load(out / "final" / "predictions.npy") for out in (single, tmp_path)]
    assert predictions[1].shape == (7, 3) and np.abs(predictions[0] - predictions[1]).max() <= 1e-5
    assert np.load(tmp_path / "final" / "label_ids.npy").tolist() == [0, 1, 2, 0, 1, 2, 0]
    ckpt = tmp_path / "checkpoint-6"
    assert sorted(p.name for p in ckpt.glob("rng_state_*.pth")) == ["rng_state_0.pth", "rng_state_1.pth"]
    logged = [json.loads(x)["step"] for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert logged == [2, 4, 6, 6]  # once per event, not once per rank
    loom.BertForSequenceClassification.from_pretrained(ckpt)  # a sharded run's checkpoint loads whole


def test_killed_two_process_run_resumes_exactly(tmp_path):
    flags = ["--batch", "4", "--accum", "2", "--dropout", "0.1"]
    whole = launch(tmp_path / "whole", *flags)
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = launch(tmp_path / "cut", *flags, "--kill-at", "4")
    assert killed.returncode != 0 and not (tmp_path / "cut" / "checkpoint-6").exists()
    again = launch(tmp_path / "cut", *flags, "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert weights_equal(final_weights(tmp_path / "whole"), final_weights(tmp_path / "cut"))
