"""Chat templates: a conversation rendered into the prompt text a chat model was trained on.

The template is the model's own Jinja source (`chat_template` in tokenizer_config.json, or
`chat_template.jinja` beside it, or GGUF metadata), rendered in Jinja's immutable sandbox:
templates come from the Hub, so they may not touch Python internals, mutate the caller's
data, or store underscore attributes. They get what transformers gives them, so a template
renders the same text with either library: `messages`, `tools`, `documents`,
`add_generation_prompt`, the tokenizer's special tokens (`bos_token`, ...), any extra keyword,
and the helpers `raise_exception(msg)`, `strftime_now(fmt)` and a `tojson` filter that keeps
non-ASCII text as is.

Differs from transformers: `tools` must be JSON-schema dicts (Python functions are not turned
into schemas), and `{% generation %}` blocks render but assistant token masks are not offered.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import InputError, TokenizerError

CHAT_TEMPLATE_FILE = "chat_template.jinja"
CHAT_TEMPLATE_DIR = "additional_chat_templates"
# Appended to the final message for `continue_final_message`: where it lands in the rendered
# text is where the model should continue. Its trailing space shows whether the template
# trimmed the message (then trailing whitespace is dropped too).
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "
# Names a message's reasoning arrives under; templates read `reasoning_content` or `thinking`.
_REASONING_KEYS = ("reasoning_content", "thinking", "reasoning")


# -- where templates come from -------------------------------------------------------------

def normalize_template(value: Any, where: str = "chat_template") -> str | dict[str, str] | None:
    """A template string, or {name: template} from the list-of-dicts form, or None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return dict(value)
    if isinstance(value, (list, tuple)):
        try:
            return {item["name"]: item["template"] for item in value}
        except (TypeError, KeyError):
            pass
    raise TokenizerError(f"{where} must be a Jinja string or a list of {{name, template}}, found {value!r:.80}")


def read_chat_templates(find: Callable[[str], Path | None], folder: Path | None,
                        config: dict) -> None:
    """Put the templates of a tokenizer folder into `config["chat_template"]`.

    `chat_template.jinja` and `additional_chat_templates/*.jinja` win over the config's entry,
    as in transformers.
    """
    found: dict[str, str] = {}
    main = find(CHAT_TEMPLATE_FILE)
    if main is not None:
        found["default"] = _read_text(main)
    extra = folder / CHAT_TEMPLATE_DIR if folder is not None else None
    if extra is not None and extra.is_dir():
        for path in sorted(extra.glob("*.jinja")):
            found[path.stem] = _read_text(path)
    if list(found) == ["default"]:
        config["chat_template"] = found["default"]
    elif found:
        config["chat_template"] = found
    elif "chat_template" in config:
        config["chat_template"] = normalize_template(config["chat_template"])


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TokenizerError(f"chat template {path} cannot be read: {e}") from None


def select_template(own: str | dict | None, chat_template: str | None = None,
                    tools: list | None = None) -> str:
    """The template source to render: an explicit one (or the name of one), else the
    tokenizer's ("tool_use" when tools are given and it has one, else "default")."""
    if isinstance(own, dict):
        if chat_template is not None:
            return own.get(chat_template, chat_template)
        if tools is not None and "tool_use" in own:
            return own["tool_use"]
        if "default" in own:
            return own["default"]
        raise TokenizerError(f"this tokenizer has several chat templates and no 'default': pass "
                             f"chat_template= one of {sorted(own)}")
    if chat_template is not None:
        return chat_template
    if own is None:
        raise TokenizerError("this tokenizer has no chat_template (none in tokenizer_config.json, "
                             f"{CHAT_TEMPLATE_FILE} or GGUF metadata); pass chat_template='...'")
    return own


# -- the sandbox ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def compile_template(source: str):
    """The Jinja template of `source` in an immutable sandbox (compiled once per source)."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols", _generation_extension()])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.globals["namespace"] = _namespace_class()
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise TokenizerError(f"chat template has a syntax error at line {e.lineno}: {e.message}") from None


class ChatTemplateException(InputError):
    """The chat template itself rejected the conversation (its `raise_exception`)."""


def _raise_exception(message: str):
    raise ChatTemplateException(f"the chat template rejected the conversation: {message}")


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    # Jinja's own tojson escapes HTML characters (<, >, &, '), which changes prompts.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


@functools.lru_cache(maxsize=1)
def _namespace_class():
    import jinja2.utils
    from jinja2.exceptions import SecurityError

    class Namespace(jinja2.utils.Namespace):
        """`namespace()` that refuses underscore names, the way into Python internals."""

        def __init__(*args, **kwargs):
            self, rest = args[0], args[1:]
            attrs = dict(*rest, **kwargs)
            for name in attrs:
                Namespace._check(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name, value):
            Namespace._check(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check(name):
            if isinstance(name, str) and name.startswith("_"):
                raise SecurityError(f"chat templates may not set underscore attributes ({name!r})")

    return Namespace


@functools.lru_cache(maxsize=1)
def _generation_extension():
    """`{% generation %}...{% endgeneration %}` marks assistant text; it renders its body."""
    from jinja2 import nodes
    from jinja2.ext import Extension

    class Generation(Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    return Generation


# -- rendering -----------------------------------------------------------------------------

def render(conversations: list[list[dict]], source: str, *, add_generation_prompt: bool = False,
           continue_final_message: bool | str = False, tools: list | None = None,
           documents: list | None = None, **variables) -> list[str]:
    """The prompt text of each conversation."""
    import jinja2

    if continue_final_message and add_generation_prompt:
        raise InputError("continue_final_message and add_generation_prompt cannot both be set: one "
                         "continues the last message, the other starts a new assistant turn")
    template = compile_template(source)
    for i, tool in enumerate(tools or []):
        if not isinstance(tool, Mapping):
            raise InputError(f"tools[{i}] must be a JSON-schema dict, found {type(tool).__name__}")
    for i, doc in enumerate(documents or []):
        if not isinstance(doc, Mapping):
            raise InputError(f"documents[{i}] must be a dict with 'title' and 'text', found {type(doc).__name__}")
    tools, documents, variables = _plain(tools), _plain(documents), _plain(variables)
    out = []
    for chat in conversations:
        chat = _with_reasoning_aliases(_plain(chat))
        final = _tag_final_message(chat, continue_final_message, source) if continue_final_message else None
        try:
            text = template.render(messages=chat, tools=tools, documents=documents,
                                   add_generation_prompt=add_generation_prompt, **variables)
        except ChatTemplateException:
            raise
        except jinja2.exceptions.SecurityError as e:
            raise TokenizerError(f"the chat template tried an unsafe operation: {e}") from None
        except jinja2.TemplateError as e:
            raise TokenizerError(f"rendering the chat template failed: {e}") from None
        out.append(_cut_at_tag(text, final) if final is not None else text)
    return out


def normalize_conversation(conversation: Any, where: str = "conversation") -> list[dict]:
    """Messages as dicts (dataclasses and pydantic models too), keys with None values dropped."""
    messages = getattr(conversation, "messages", conversation)
    if not isinstance(messages, (list, tuple)):
        raise InputError(f"{where} must be a list of messages, found {type(messages).__name__}")
    out = []
    for i, message in enumerate(messages):
        if dataclasses.is_dataclass(message) and not isinstance(message, type):
            message = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
        elif callable(getattr(message, "model_dump", None)):
            message = message.model_dump()
        if not isinstance(message, Mapping):
            raise InputError(f"{where}[{i}] must be a dict like {{'role': 'user', 'content': '...'}}, "
                             f"found {type(message).__name__}")
        out.append({k: v for k, v in message.items() if v is not None})
    return out


def _plain(value: Any) -> Any:
    """A copy made of JSON types only: what a template sees cannot reach methods of the
    caller's objects (arrays, images) or change the caller's data."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    for base in (bool, str, int, float):   # subclasses (enums, numpy scalars) lose their methods
        if isinstance(value, base):
            return base(value)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return _plain(value.item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if callable(getattr(value, "model_dump", None)):
        return _plain(value.model_dump())
    return f"<{type(value).__name__}>"   # media and other objects: templates only test presence


def _with_reasoning_aliases(chat: list) -> list:
    """A message's reasoning under any of its names is offered under `reasoning_content`
    and (unless the message has its own) `thinking`."""
    out = []
    for message in chat:
        if isinstance(message, dict):
            reasoning = next((message[k] for k in _REASONING_KEYS if message.get(k) is not None), None)
            if reasoning is not None:
                message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
        out.append(message)
    return out


def _tag_final_message(chat: list, key: bool | str, source: str) -> str:
    """Append the continue tag to the final message's text; return that text."""
    key = key if isinstance(key, str) else "content"
    if not chat or chat[-1].get(key) is None:
        raise InputError(f"continue_final_message is set but the final message has no {key!r} to continue")
    final = chat[-1][key]
    fields = [k for k in _REASONING_KEYS if chat[-1].get(k) == final] if key in _REASONING_KEYS else [key]
    if not any(f in source for f in fields):
        raise InputError(f"continue_final_message={key!r}, but the chat template never reads {key!r}")
    if isinstance(final, (list, tuple)):   # content blocks: continue the last text block
        block = next((b for b in reversed(final) if isinstance(b, dict) and "text" in b), None)
        if block is None:
            raise InputError("continue_final_message is set but the final message has no text block")
        text, block["text"] = block["text"], block["text"] + _CONTINUE_TAG
        return text
    for f in fields:
        chat[-1][f] = chat[-1][f] + _CONTINUE_TAG
    return final


def _cut_at_tag(text: str, final: str) -> str:
    tag = _CONTINUE_TAG.strip()
    if final.strip() not in text or tag not in text:
        raise TokenizerError("continue_final_message is set but the chat template dropped or changed "
                             "the final message, so there is no place to continue it")
    at = text.rindex(tag)
    if text[at:at + len(_CONTINUE_TAG)] == _CONTINUE_TAG:
        return text[:at]
    return text[:at].rstrip()   # the template trimmed the message: trailing whitespace goes too


# -- the Tokenizer method ------------------------------------------------------------------

def apply_chat_template(tokenizer, conversation, *, tools=None, documents=None,
                        chat_template: str | None = None, add_generation_prompt: bool = False,
                        continue_final_message: bool | str = False, tokenize: bool = True,
                        padding: bool | str = False, truncation: bool = False,
                        max_length: int | None = None, return_tensors: str | None = None,
                        return_dict: bool = True, tokenizer_kwargs: dict | None = None,
                        **template_variables):
    """Render one conversation (a list of messages) or a batch of them; see
    `Tokenizer.apply_chat_template`."""
    if isinstance(conversation, (list, tuple)) and not conversation:
        raise InputError("conversation is empty: pass at least one message")
    first = conversation[0] if isinstance(conversation, (list, tuple)) else None
    batched = isinstance(first, (list, tuple)) or hasattr(first, "messages")
    chats = conversation if batched else [conversation]
    chats = [normalize_conversation(c, f"conversation[{i}]" if batched else "conversation")
             for i, c in enumerate(chats)]
    source = select_template(tokenizer.chat_template, chat_template, tools)
    variables = {**tokenizer.special_tokens_map, **template_variables}
    texts = render(chats, source, add_generation_prompt=add_generation_prompt,
                   continue_final_message=continue_final_message, tools=tools,
                   documents=documents, **variables)
    if not tokenize:
        return texts if batched else texts[0]
    encoded = tokenizer(texts if batched else texts[0], add_special_tokens=False, padding=padding,
                        truncation=truncation, max_length=max_length,
                        return_tensors=return_tensors, **(tokenizer_kwargs or {}))
    return encoded if return_dict else encoded["input_ids"]


__all__ = [
    "CHAT_TEMPLATE_DIR", "CHAT_TEMPLATE_FILE", "ChatTemplateException", "apply_chat_template",
    "compile_template", "normalize_conversation", "normalize_template", "read_chat_templates",
    "render", "select_template",
]
