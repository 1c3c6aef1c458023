"""`loom run TASK INPUT... [--model M] [--batch-size N] [--param K=V] [--json]`.

Each INPUT is a text, or a JSON object for tasks whose inputs are dicts
(`'{"question": "...", "context": "..."}'`); for sentence-similarity the first INPUT is the
source and the others the candidates. `--param top_k=3` passes a call parameter (the value
is read as JSON when it parses, else as a string).
"""

from __future__ import annotations

import json

from ..errors import InputError


def add_run_parser(sub) -> None:
    p = sub.add_parser("run", help="run a task's pipeline on each INPUT")
    p.add_argument("task", metavar="TASK", help="e.g. text-classification, fill-mask, ner")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--model", default=None, help="folder or Hub repo id (default: the task's, if any)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps ...")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a call parameter, e.g. top_k=3 or candidate_labels='[\"a\", \"b\"]'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_command)


def run_command(args) -> int:
    from . import pipeline

    params = dict(_param(p) for p in args.param)
    pipe = pipeline(args.task, model=args.model, device=args.device, batch_size=args.batch_size)
    inputs = [_input(x) for x in args.inputs]
    if pipe.task == "sentence-similarity" and not isinstance(inputs[0], dict):
        inputs = [{"source_sentence": inputs[0], "sentences": inputs[1:]}]
    results = pipe(inputs, **params)
    if args.json:
        print(json.dumps([{"input": x, "result": r} for x, r in zip(inputs, results)]))
        return 0
    for x, r in zip(inputs, results):
        print(json.dumps(x, ensure_ascii=False))
        print(f"  {_summary(r)}")
    return 0


def _param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InputError(f"--param must be KEY=VALUE, found {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _input(text: str):
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError as e:
            raise InputError(f"INPUT {text!r:.60} starts with '{{' but is not JSON: {e}") from None
    return text


def _summary(result) -> str:
    """Results as one readable line; vectors as their size and first values."""
    if isinstance(result, list) and result and all(isinstance(v, float) for v in result):
        if len(result) > 8:
            return f"vector of {len(result)}: [{', '.join(f'{v:+.4f}' for v in result[:6])}, ...]"
        return "[" + ", ".join(f"{v:.4f}" for v in result) + "]"
    if isinstance(result, list) and result and isinstance(result[0], list) and result[0] and \
            isinstance(result[0][0], list):
        return f"token vectors: {len(result[0])} x {len(result[0][0])}"
    return json.dumps(result, ensure_ascii=False)


__all__ = ["add_run_parser", "run_command"]
