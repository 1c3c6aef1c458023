"""Moving weight bytes: find, read (memory-mapped), validate, save (sharded), load into a model.

Reading never unpickles code: safetensors are parsed here and mapped from disk without a
copy; `pytorch_model.bin` goes through `torch.load(weights_only=True)` only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import CheckpointError, EntryNotFoundError, ShapeMismatchError, UnsafeCheckpointError

logger = logging.getLogger(__name__)

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PT_WEIGHTS = "pytorch_model.bin"
PT_INDEX = "pytorch_model.bin.index.json"
# Weight files a save replaces: stale ones from an earlier save of another layout go.
WEIGHT_FILE_PATTERNS = ("model*.safetensors", SAFE_INDEX, "pytorch_model*.bin", PT_INDEX)

_ST_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}
_MAX_HEADER = 100 * 1024 * 1024


# -- finding ------------------------------------------------------------------------------

def find_checkpoint(path_or_repo_id, **hub_kwargs) -> list[Path]:
    """The weight files of a checkpoint: one file, or every shard an index names.

    Safetensors win over pickles when both exist; only the shards named in the index are
    fetched.
    """
    from ..hub import pin, resolve

    # Every file from one commit of a Hub repo (a pinned revision passes through unchanged).
    hub_kwargs = {**hub_kwargs, "revision": pin(path_or_repo_id, hub_kwargs.get("revision"))}
    for single, index in ((SAFE_WEIGHTS, SAFE_INDEX), (PT_WEIGHTS, PT_INDEX)):
        path = resolve(path_or_repo_id, single, required=False, **hub_kwargs)
        if path is not None:
            return [path]
        index_path = resolve(path_or_repo_id, index, required=False, **hub_kwargs)
        if index_path is not None:
            shards = shard_names(index_path)
            return [resolve(path_or_repo_id, name, **hub_kwargs) for name in shards]
    raise EntryNotFoundError(
        f"no weights in {path_or_repo_id}: looked for {SAFE_WEIGHTS}, {SAFE_INDEX}, "
        f"{PT_WEIGHTS} and {PT_INDEX}"
    )


def shard_names(index_path: Path) -> list[str]:
    """The shard files an index names, in order; names outside the folder are refused."""
    try:
        index = json.loads(Path(index_path).read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
        names = list(dict.fromkeys(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"shard index {index_path} is malformed: {e!r}") from None
    for name in names:
        if (not isinstance(name, str) or not name or name.startswith(("/", "\\"))
                or ".." in Path(name).parts or os.path.isabs(name)):
            raise CheckpointError(
                f"shard index {index_path} names {name!r}, a path outside the checkpoint; refused"
            )
    return names


# -- reading ------------------------------------------------------------------------------

def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Map a .safetensors file into tensors that share the file's pages (copy-on-write)."""
    path = Path(path)
    header, data_start, size = _safetensors_header(path)
    out: dict[str, torch.Tensor] = {}
    storage = None
    for name, info in header.items():
        try:
            dtype = _ST_DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: header entry for {name!r} is malformed: {info!r}") from None
        itemsize = torch.empty(0, dtype=dtype).element_size()
        nbytes = math.prod(shape) * itemsize
        if end - begin != nbytes or begin < 0 or data_start + end > size:
            raise CheckpointError(
                f"{path} is truncated or corrupt: tensor {name!r} needs bytes "
                f"{data_start + begin}..{data_start + end}, the file has {size} bytes"
            )
        offset = data_start + begin
        if nbytes == 0:
            out[name] = torch.empty(shape, dtype=dtype)
            continue
        if storage is None:
            storage = torch.UntypedStorage.from_file(str(path), shared=False, nbytes=size)
        if offset % itemsize:  # unaligned: copy this one tensor
            raw = bytearray(bytes(storage[offset:offset + nbytes]))
            out[name] = torch.frombuffer(raw, dtype=dtype).reshape(shape)
        else:
            t = torch.empty(0, dtype=dtype)
            t.set_(storage, offset // itemsize, shape)
            out[name] = t
    return out


def _safetensors_header(path: Path) -> tuple[dict, int, int]:
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path} is truncated: {size} bytes, not even a header")
            n = int.from_bytes(head, "little")
            if n > min(size - 8, _MAX_HEADER):
                raise CheckpointError(
                    f"{path} is truncated or not a safetensors file: header says {n} bytes, "
                    f"the file has {size}"
                )
            header = json.loads(f.read(n))
    except OSError as e:
        raise CheckpointError(f"{path} cannot be read: {e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path} is corrupt: its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is corrupt: its header is not a JSON object")
    header.pop("__metadata__", None)
    return header, 8 + n, size


def read_torch_bin(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a pickled state dict with `weights_only=True`: tensors and plain containers only."""
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):  # mmap needs the zip format; older files are read whole
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"{path} is a pickle that would run code to load ({str(e).splitlines()[0][:200]}); "
            f"loom only loads plain tensors. Convert it to safetensors with a trusted tool."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is corrupt or not a PyTorch checkpoint: {e}") from None
    if isinstance(state, Mapping) and "state_dict" in state and len(state) <= 3:
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a flat dict of tensors")
    return dict(state)


def read_state_dict(files: Iterable[Path]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for path in files:
        part = read_safetensors(path) if str(path).endswith(".safetensors") else read_torch_bin(path)
        state.update(part)
    return state


# -- saving -------------------------------------------------------------------------------

def parse_size(size: int | str) -> int:
    """`5_000_000`, "5GB", "200MB", "1GiB" -> bytes."""
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*", str(size), re.IGNORECASE)
    if not m:
        raise ValueError(f"max_shard_size must be bytes or like '5GB', found {size!r}")
    base = 1024 if m.group(3) else 1000
    power = " KMGT".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * base**power)


def save_state_dict(state: Mapping[str, torch.Tensor], folder: Path, max_shard_size="5GB") -> list[str]:
    """Write safetensors, sharded with an index above `max_shard_size`. Returns file names."""
    from safetensors.torch import save_file

    limit = parse_size(max_shard_size)
    seen: set[int] = set()
    clean: dict[str, torch.Tensor] = {}
    for name, t in state.items():  # safetensors refuses tensors that share memory
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        ptr = t.untyped_storage().data_ptr() if t.numel() else -len(clean) - 1
        clean[name] = t.contiguous() if ptr not in seen and t.is_contiguous() else t.clone().contiguous()
        seen.add(ptr)
    shards: list[dict[str, torch.Tensor]] = [{}]
    used = 0
    for name, t in clean.items():
        n = t.numel() * t.element_size()
        if shards[-1] and used + n > limit:
            shards.append({})
            used = 0
        shards[-1][name] = t
        used += n
    meta = {"format": "pt"}
    if len(shards) == 1:
        save_file(shards[0], str(folder / SAFE_WEIGHTS), metadata=meta)
        return [SAFE_WEIGHTS]
    names, weight_map = [], {}
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / name), metadata=meta)
        names.append(name)
        weight_map.update({k: name for k in shard})
    total = sum(t.numel() * t.element_size() for t in clean.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / SAFE_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return names + [SAFE_INDEX]


# -- loading into a model -----------------------------------------------------------------

@dataclass
class LoadReport:
    """What a load did: which keys were missing (and initialised), unexpected, or resized."""

    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    mismatched_keys: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    tied_keys: list[str] = field(default_factory=list)

    def log(self, model_name: str, source) -> None:
        if self.missing_keys or self.mismatched_keys:
            logger.warning(
                "%s: newly initialised from scratch (not in %s): %s%s. Train it before use.",
                model_name, source, ", ".join(self.missing_keys),
                "".join(f"; {k} resized {a} -> {b}" for k, a, b in self.mismatched_keys),
            )
        if self.unexpected_keys:
            logger.info("%s: unused weights of %s: %s", model_name, source,
                        ", ".join(self.unexpected_keys))


def apply_renames(state: dict[str, torch.Tensor], renames) -> dict[str, torch.Tensor]:
    if not renames:
        return state
    out: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        for pattern, repl in renames:
            key = re.sub(pattern, repl, key)
        out.setdefault(key, t)  # an old alias of a key already read is dropped
    return out


def align_prefix(state: dict[str, torch.Tensor], model_keys: set[str], prefix: str):
    """Let a base model load from a head checkpoint and a head model from a base one."""
    if not prefix:
        return state
    p = prefix + "."
    model_prefixed = any(k.startswith(p) for k in model_keys)
    ckpt_prefixed = any(k.startswith(p) for k in state)
    if ckpt_prefixed and not model_prefixed:
        return {(k[len(p):] if k.startswith(p) else k): v for k, v in state.items()}
    if model_prefixed and not ckpt_prefixed:
        return {(p + k if k not in model_keys and p + k in model_keys else k): v for k, v in state.items()}
    return state


def load_into(
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    *,
    dtype: torch.dtype,
    renames=(),
    ignore_unexpected=(),
    prefix: str = "",
    ignore_mismatched_sizes: bool = False,
    source="the checkpoint",
) -> LoadReport:
    """Assign checkpoint tensors to a model built on the meta device; report the rest."""
    expected = model.state_dict(keep_vars=True)
    state = align_prefix(apply_renames(state, renames), set(expected), prefix)
    report = LoadReport()
    to_assign: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        if key not in expected:
            if not any(re.search(p, key) for p in ignore_unexpected):
                report.unexpected_keys.append(key)
            continue
        want = tuple(expected[key].shape)
        if tuple(t.shape) != want:
            if not ignore_mismatched_sizes:
                raise ShapeMismatchError(
                    f"{source}: tensor {key!r} has shape {tuple(t.shape)}, the model expects "
                    f"{want} (from its config). Check the config, or pass "
                    f"ignore_mismatched_sizes=True to initialise it anew."
                )
            report.mismatched_keys.append((key, tuple(t.shape), want))
            continue
        if t.is_floating_point() and t.dtype != dtype:
            t = t.to(dtype)
        to_assign[key] = t
    model.load_state_dict(to_assign, strict=False, assign=True)
    missing = [k for k in expected if k not in to_assign]
    report.missing_keys = [k for k in missing if k not in {m for m, _, _ in report.mismatched_keys}]
    return report


def materialize(model: torch.nn.Module, dtype: torch.dtype, init_fn) -> list[str]:
    """Give every parameter still on the meta device real memory and initialise its module."""
    done = []
    for mod_name, module in model.named_modules():
        meta = [n for n, p in module.named_parameters(recurse=False) if p.is_meta]
        meta += [n for n, b in module.named_buffers(recurse=False) if b.is_meta]
        if not meta:
            continue
        loaded = {n: p for n, p in module.named_parameters(recurse=False) if not p.is_meta}
        for n in meta:
            old = getattr(module, n)
            new = torch.empty(old.shape, dtype=dtype if old.is_floating_point() else old.dtype)
            if isinstance(old, torch.nn.Parameter):
                setattr(module, n, torch.nn.Parameter(new, requires_grad=old.requires_grad))
            else:
                module._buffers[n] = new
        saved = {n: p.detach().clone() for n, p in loaded.items()}
        with torch.no_grad():
            init_fn(module)
            for n, value in saved.items():  # the init must not touch what was loaded
                getattr(module, n).copy_(value)
        done += [f"{mod_name}.{n}" if mod_name else n for n in meta]
    return done
