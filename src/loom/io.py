"""Atomic writes of files and folders.

A save writes everything into a temporary folder beside the target, then moves it into
place: a new target folder is one `rename`; into an existing folder (a tokenizer saved
next to its model) each file is moved with `os.replace`, weights first and the small files
that point at them (indexes, config.json) last. A crash or an exception before the move
leaves the target as it was and removes the temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Moved last, in this order, so that a reader never sees them point at files not there yet.
_LAST = ("model.safetensors.index.json", "config.json")


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; on success its files replace those of `target`."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        from .errors import InputError

        raise InputError(f"cannot save into {target}: it exists and is not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if not target.exists():
            os.rename(tmp, target)
            return
        files = sorted(
            (p for p in tmp.rglob("*") if p.is_file()),
            key=lambda p: (p.name in _LAST, _LAST.index(p.name) if p.name in _LAST else 0),
        )
        for src in files:
            dst = target / src.relative_to(tmp)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike, obj, *, sort_keys: bool = True) -> None:
    """Write JSON the way Hugging Face files look: indent 2, UTF-8, trailing newline."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def read_json(path: str | os.PathLike, *, what: str = "JSON file") -> dict:
    """Read a JSON object, raising a loom error that names the file on any problem."""
    from .errors import ConfigError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{what} {path} cannot be read: {e}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{what} {path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{what} {path} must hold a JSON object, found {type(obj).__name__}")
    return obj
