"""Sharing on the Hub: `push_to_hub` for every class with `save_pretrained`, folder uploads,
and the model card written when the repo has none.

`PushToHubMixin.push_to_hub` saves the object into a temporary folder, then `upload_folder`
creates the repo if needed and uploads every file in one commit (large files through LFS, as
huggingface_hub decides), adding a generated README.md (architecture, task, how to load it
with loom, parameter count) unless the folder or the repo already has one. Weight files of
the repo that the push does not rewrite are deleted in the same commit, as `save_pretrained`
deletes them from a folder. Requests retry
like downloads (`loom.hub.NETWORK`); the Hub's refusals are loom errors that never contain
the token. No torch import.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from pathlib import Path

from .errors import CheckpointError, ConfigError, InputError, LoomError

CARD_NAME = "README.md"
# loom task -> the Hub's pipeline tag
PIPELINE_TAGS = {
    "base": "feature-extraction",
    "masked-lm": "fill-mask",
    "causal-lm": "text-generation",
    "sequence-classification": "text-classification",
    "token-classification": "token-classification",
    "question-answering": "question-answering",
    "image-classification": "image-classification",
}


class CommitInfo(str):
    """The URL of a pushed commit (a `str`), with its `oid` and, for a pull request, `pr_url`."""

    oid: str
    pr_url: str | None

    def __new__(cls, url: str, oid: str, pr_url: str | None = None):
        obj = super().__new__(cls, url)
        obj.oid, obj.pr_url = oid, pr_url
        return obj

    @property
    def url(self) -> str:
        return str(self)


class PushToHubMixin:
    """Adds `push_to_hub` to a class with `save_pretrained(folder)`."""

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = None,
    ) -> CommitInfo:
        """Save to a temporary folder and upload it to `repo_id` in one commit (creating the
        repo if needed, with a model card unless one exists); returns the commit's URL/oid."""
        save_kwargs = {}
        if max_shard_size is not None:
            if "max_shard_size" not in inspect.signature(self.save_pretrained).parameters:
                raise InputError(f"max_shard_size applies to models; {type(self).__name__} has no weights to shard")
            save_kwargs["max_shard_size"] = max_shard_size
        with tempfile.TemporaryDirectory(prefix="loom-push-") as tmp:
            folder = Path(tmp) / "upload"
            self.save_pretrained(folder, **save_kwargs)
            count = getattr(self, "num_parameters", None)
            return upload_folder(
                folder, repo_id, commit_message=commit_message or f"Upload {type(self).__name__}",
                private=private, token=token, revision=revision, create_pr=create_pr,
                class_name=type(self).__name__, parameters=count() if callable(count) else None,
            )


def upload_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    commit_message: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    class_name: str | None = None,
    parameters: int | None = None,
) -> CommitInfo:
    """Upload every file of `folder` to `repo_id` in one commit; see the module docstring.
    `class_name` and `parameters` (of the object saved there) go into a generated card."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from . import __version__
    from .errors import OfflineError
    from .hub import call, check_repo_id, endpoint, is_offline

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    if not files:
        raise InputError(f"nothing to push: {folder} is not a folder with files")
    if is_offline():
        raise OfflineError(f"cannot push to {repo_id}: HF_HUB_OFFLINE is set; unset it to use the network")
    check_repo_id(repo_id)
    api = HfApi(endpoint=endpoint(), library_name="loom", library_version=__version__)
    if "/" not in repo_id:  # a bare name: in the token owner's namespace
        user = call(lambda: api.whoami(token=token), what="finding the token's user", repo_id=repo_id, token=token)
        repo_id = f"{user['name']}/{repo_id}"
    ask = dict(repo_id=repo_id, token=token)
    _ensure_repo(api, repo_id, private, ask)
    if revision not in (None, "main") and not create_pr:
        call(lambda: api.create_branch(repo_id, branch=revision, exist_ok=True, token=token),
             what=f"creating branch {revision} of {repo_id}", **ask)
    ops = [CommitOperationAdd(path_in_repo=p.relative_to(folder).as_posix(), path_or_fileobj=str(p))
           for p in files]
    ops += _stale_weights(api, repo_id, revision, {op.path_in_repo for op in ops}, ask)
    if not (folder / CARD_NAME).is_file() and not call(
            lambda: api.file_exists(repo_id, CARD_NAME, revision=revision, token=token),
            what=f"looking for {CARD_NAME} in {repo_id}", **ask):
        card = model_card(folder, repo_id, class_name=class_name, parameters=parameters)
        ops.append(CommitOperationAdd(path_in_repo=CARD_NAME, path_or_fileobj=card.encode()))
    info = call(lambda: api.create_commit(repo_id, ops, commit_message=commit_message or "Upload with loom",
                                          revision=revision, create_pr=create_pr, token=token),
                what=f"pushing {len(ops)} files to {repo_id}", revision=revision, **ask,
                # huggingface_hub retries its preupload and LFS requests itself (5 tries)
                retried_by_hf=("/preupload/", "/info/lfs/objects/batch"))
    return CommitInfo(info.commit_url, info.oid, info.pr_url)


def _ensure_repo(api, repo_id: str, private: bool | None, ask: dict) -> None:
    """Create the repo; one that exists is fine, even when the token may not create repos."""
    from huggingface_hub.errors import HfHubHTTPError

    from .errors import UnauthorizedError
    from .hub import call

    def create() -> None:
        try:
            api.create_repo(repo_id, private=private, token=ask["token"])
        except HfHubHTTPError as e:
            if e.response is None or e.response.status_code != 409:  # 409: it exists
                raise

    try:
        call(create, what=f"creating {repo_id}", **ask)
    except UnauthorizedError as refused:
        try:  # a token with write access to this repo only: go on if the repo is there
            call(lambda: api.model_info(repo_id, token=ask["token"]), what=f"looking for {repo_id}", **ask)
        except LoomError:
            raise refused from None


def _stale_weights(api, repo_id: str, revision, pushed: set[str], ask: dict) -> list:
    """Deletions of the repo's weight files that this push does not rewrite (a single file
    after a sharded save, or the reverse), as save_pretrained removes them from a folder:
    otherwise a load would pick the stale file."""
    import fnmatch

    from huggingface_hub import CommitOperationDelete

    from .hub import call
    from .modeling.weights import WEIGHT_FILE_PATTERNS

    def is_weights(name: str) -> bool:
        return "/" not in name and any(fnmatch.fnmatch(name, p) for p in WEIGHT_FILE_PATTERNS)

    if not any(is_weights(name) for name in pushed):
        return []
    info = call(lambda: api.model_info(repo_id, revision=revision, token=ask["token"]),
                what=f"the file list of {repo_id}", revision=revision, **ask)
    stale = [s.rfilename for s in info.siblings or [] if is_weights(s.rfilename) and s.rfilename not in pushed]
    return [CommitOperationDelete(path_in_repo=name) for name in stale]


# -- model cards --------------------------------------------------------------------------

def model_card(folder: str | os.PathLike, repo_id: str, *, class_name: str | None = None,
               parameters: int | None = None) -> str:
    """A README.md for the saved files in `folder`: YAML metadata, what it is, how to load it."""
    facts = card_facts(Path(folder), class_name, parameters)
    tags = ["loom"] + ([facts["model_type"]] if facts.get("model_type") else [])
    meta = ["---", "library_name: loom", "tags:", *[f"- {t}" for t in tags]]
    if facts.get("pipeline_tag"):
        meta.append(f"pipeline_tag: {facts['pipeline_tag']}")
    meta.append("---")
    rows = [(label, facts[key]) for key, label in (
        ("architecture", "Architecture"), ("model_type", "Model type"), ("task", "Task"),
        ("parameters", "Parameters"), ("elements", "Tensor elements in the weights"),
        ("dtype", "Weights dtype"), ("tokenizer", "Tokenizer"),
    ) if facts.get(key) is not None]
    lines = [*meta, "", f"# {repo_id.rpartition('/')[2]}", "",
             f"A {facts['kind']} shared with loom, which reads and writes the Hugging Face"
             " checkpoint formats.", ""]
    if rows:
        lines += ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""]
    if facts.get("config"):
        lines += ["Configuration: " + ", ".join(f"`{k}={v}`" for k, v in facts["config"].items()), ""]
    lines += ["## How to load", "", "```python", f"from loom import {facts['loader']}", "",
              f"{facts['var']} = {facts['loader']}.from_pretrained(\"{repo_id}\")", "```", ""]
    return "\n".join(lines)


_CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "intermediate_size", "max_position_embeddings")


# Files that say what a folder without weights holds, first match wins: (file, kind, loader, variable).
_KINDS = (
    ("processor_config.json", "processor", "AutoProcessor", "processor"),
    ("preprocessor_config.json", "image processor", "AutoImageProcessor", "image_processor"),
    ("tokenizer_config.json", "tokenizer", "AutoTokenizer", "tokenizer"),
    ("tokenizer.json", "tokenizer", "AutoTokenizer", "tokenizer"),
    ("config.json", "configuration", "AutoConfig", "config"),
    ("generation_config.json", "generation configuration", "GenerationConfig", "generation_config"),
)


def card_facts(folder: Path, class_name: str | None = None, parameters: int | None = None) -> dict:
    """What the card says, read from the saved files (config.json, weights, tokenizer...).
    Without the model's own `parameters`, the weights' tensor elements are counted (extra
    copies that a checkpoint keeps for other readers included)."""
    config = _read(folder / "config.json")
    has_weights = any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))
    has_tokenizer = (folder / "tokenizer.json").is_file() or (folder / "vocab.txt").is_file()
    summary = {k: config[k] for k in _CONFIG_KEYS if isinstance(config.get(k), int)}
    if config and has_weights:
        architecture = (config.get("architectures") or [class_name])[0]
        task = _task(config.get("model_type"), architecture)
        return dict(
            kind="model", var="model", architecture=architecture, model_type=config.get("model_type"),
            task=task, pipeline_tag=PIPELINE_TAGS.get(task), loader=_auto_class(task) or architecture,
            parameters=None if parameters is None else f"{parameters:,}",
            elements=f"{_count_elements(folder):,}" if parameters is None else None,
            dtype=config.get("dtype") or config.get("torch_dtype"), config=summary,
            tokenizer="included (load it with AutoTokenizer)" if has_tokenizer else None,
        )
    for name, kind, loader, var in _KINDS:
        if (folder / name).is_file():
            tokenizer_class = _read(folder / "tokenizer_config.json").get("tokenizer_class")
            return dict(kind=kind, loader=loader, var=var, model_type=config.get("model_type"),
                        config=summary, tokenizer=tokenizer_class if kind == "tokenizer" else None)
    return dict(kind=class_name or "set of files", loader=class_name or "AutoModel", var="obj")


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _task(model_type: str | None, architecture: str | None) -> str | None:
    """The loom task whose class is `architecture`, from the model folder's task table."""
    if not model_type or not architecture:
        return None
    from .auto import model_module

    try:
        tasks = model_module(model_type).TASKS
    except (ConfigError, ImportError):
        return None
    return next((task for task, name in tasks.items() if name == architecture), None)


def _auto_class(task: str | None) -> str | None:
    if task is None:
        return None
    from . import auto

    for name, value in vars(auto).items():
        if isinstance(value, type) and issubclass(value, auto._AutoModel) and value.task == task \
                and value is not auto._AutoModel:
            return name
    return None


def _count_elements(folder: Path) -> int:
    """Elements of every tensor in the folder's safetensors (read from the headers only)."""
    total = 0
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with open(path, "rb") as f:
                n = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(n))
            shapes = [info["shape"] for name, info in header.items() if name != "__metadata__"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{path} is not a readable safetensors file: {e!r}") from None
        for shape in shapes:
            size = 1
            for d in shape:
                size *= int(d)
            total += size
    return total


__all__ = ["PushToHubMixin", "CommitInfo", "upload_folder", "model_card", "card_facts"]
