"""The `loom` command line.

    loom env                              versions, devices, the default models
    loom embed TEXT... [--model M]        sentence embeddings
    loom similarity SOURCE CANDIDATE...   cosine similarity of SOURCE with each candidate

With no --model, the offline default model (all-MiniLM-L6-v2) is used.
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
