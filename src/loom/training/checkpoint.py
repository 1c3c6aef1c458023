"""Checkpoints: `output_dir/checkpoint-N/`, written atomically, read for an exact resume.

A checkpoint folder holds the model as `from_pretrained` reads it (config.json,
model.safetensors), the tokenizer when the Trainer has one, `optimizer.pt`,
`scheduler.pt`, `rng_state_<rank>.pth` for every rank (python, numpy, torch CPU and CUDA
generators), `trainer_state.json` (step, data position, logs, best metric) and
`training_args.json`. Everything is written into a temporary folder and renamed into
place, so a crash mid-save leaves no half checkpoint. Tensors load with
`torch.load(weights_only=True)`: no code runs when reading one.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError, InputError
from ..io import atomic_folder, read_json, write_json

logger = logging.getLogger(__name__)

PREFIX = "checkpoint"
STATE_FILE = "trainer_state.json"
ARGS_FILE = "training_args.json"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
_STEP = re.compile(rf"^{PREFIX}-(\d+)$")


# -- random number generators ---------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """This process's generators, in types `torch.load(weights_only=True)` accepts."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)},
        "torch": torch.random.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.random.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- writing --------------------------------------------------------------------------------

def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / f"{PREFIX}-{step}"


def save_model_files(model, folder: Path, full_state: dict[str, torch.Tensor] | None = None) -> None:
    """config.json + safetensors; `full_state` is the gathered state of a sharded model."""
    if full_state is not None:
        full_state = _deduplicate_tied(model, full_state)
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(folder, state_dict=full_state)
        return
    from safetensors.torch import save_file

    state = full_state if full_state is not None else model.state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(folder / "model.safetensors"))


def _deduplicate_tied(model, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A tied output weight is written once, as `save_pretrained` does for unsharded models."""
    tied = model._tied_pairs() if hasattr(model, "_tied_pairs") else []
    state = {k: v for k, v in state.items() if not any(k == t and s in state for t, s in tied)}
    for key, alias in getattr(model, "SAVE_ALIASES", {}).items():
        if key in state:
            state[alias] = state[key].clone()
    return state


def save_checkpoint(folder: Path, *, model, full_state, optimizer_state: dict, scheduler_state: dict,
                    rng_states: list[dict], trainer_state: dict, args, processing_class=None) -> Path:
    """Write one checkpoint atomically (rank 0 only); returns its folder."""
    with atomic_folder(folder) as tmp:
        save_model_files(model, tmp, full_state)
        if processing_class is not None and hasattr(processing_class, "save_pretrained"):
            processing_class.save_pretrained(tmp)
        torch.save(optimizer_state, tmp / OPTIMIZER_FILE)
        torch.save(scheduler_state, tmp / SCHEDULER_FILE)
        for rank, state in enumerate(rng_states):
            torch.save(state, tmp / f"rng_state_{rank}.pth")
        write_json(tmp / ARGS_FILE, args.to_dict())
        write_json(tmp / STATE_FILE, trainer_state)  # last: its presence marks a whole checkpoint
    return folder


# -- reading --------------------------------------------------------------------------------

def load_tensors(path: Path, what: str):
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path.parent} has no {path.name} ({what}); "
                              "it is incomplete or was not written by loom's Trainer")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise CheckpointError(f"cannot read {what} from {path}: {e}") from None


def load_trainer_state(folder: Path) -> dict:
    if not (folder / STATE_FILE).is_file():
        raise CheckpointError(f"{folder} is not a Trainer checkpoint: no {STATE_FILE}")
    return read_json(folder / STATE_FILE, what="trainer state")


def load_model_weights(model, folder: Path, state_dict_hook=None) -> None:
    """Copy the checkpoint's weights into `model` in place (optimizer references stay valid)."""
    from ..modeling import weights

    state = weights.read_state_dict(weights.find_checkpoint(folder))
    if state_dict_hook is not None:  # a sharded model takes the full state collectively
        state_dict_hook(state)
        return
    tied = {t for t, _ in model._tied_pairs()} if hasattr(model, "_tied_pairs") else set()
    aliases = set(getattr(model, "SAVE_ALIASES", {}).values())  # extra copies for other readers
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in tied]
    unexpected = [k for k in result.unexpected_keys if k not in aliases]
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {folder} does not fit the model: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    if hasattr(model, "tie_weights"):
        model.tie_weights()


# -- finding and rotating -------------------------------------------------------------------

def step_of(folder: Path) -> int | None:
    m = _STEP.match(Path(folder).name)
    return int(m.group(1)) if m else None


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints of `output_dir`, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and step_of(p) is not None and (p / STATE_FILE).is_file()]
    return sorted(found, key=step_of)


def resolve_resume(value, output_dir: str | Path) -> Path | None:
    """`True` -> the last checkpoint of output_dir; a path -> that checkpoint; None/False -> None."""
    if value is None or value is False:
        return None
    if value is True:
        found = list_checkpoints(output_dir)
        if not found:
            raise InputError(f"resume_from_checkpoint=True but {output_dir} holds no checkpoint-N folder")
        return found[-1]
    folder = Path(value)
    if not folder.is_dir():
        raise InputError(f"resume_from_checkpoint={str(value)!r} is not a folder")
    load_trainer_state(folder)  # raises when it is not a checkpoint
    return folder


def rotate(output_dir: str | Path, limit: int | None, keep: str | None = None) -> list[Path]:
    """Delete the oldest checkpoints beyond `limit`; never the newest, never `keep` (the best)."""
    if limit is None:
        return []
    found = list_checkpoints(output_dir)
    protected = {found[-1].resolve()} if found else set()
    if keep is not None:
        protected.add(Path(keep).resolve())
    excess = len(found) - max(limit, len(protected))
    removed = []
    for folder in found:
        if excess <= 0:
            break
        if folder.resolve() in protected:
            continue
        shutil.rmtree(folder)
        removed.append(folder)
        excess -= 1
    return removed


__all__ = ["save_checkpoint", "list_checkpoints", "resolve_resume", "rotate", "rng_state", "set_rng_state"]
