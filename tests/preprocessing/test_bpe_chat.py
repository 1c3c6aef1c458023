"""Byte-level BPE tokenizers from tokenizer.json (SmolLM2's real vocabulary, GPT-2 and
Llama 3 layouts), padding sides, and chat templates, against transformers 5."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest
import torch
import transformers
from tokenizers import Regex, Tokenizer as Backend, decoders, models, pre_tokenizers, processors, trainers

from loom.defaults import default_generation_model_path
from loom.errors import InputError, TokenizerError
from loom.preprocessing import Tokenizer
from loom.preprocessing.chat import ChatTemplateException
from tests.preprocessing.test_tokenizer import make_corpus

CORPUS = make_corpus(300, seed=7) + [
    "Hello world", " Hello", "  two spaces", "tabs\tand\nnewlines\r\n", "🚀🎉👨‍👩‍👧 emoji",
    "東京は日本の首都です。", "한국어", "don't I'll we've", "x1234 2024-01-31 3.14", "<|im_start|>user",
    "<|im_end|><|im_start|>", "trailing   ", "\u00a0nbsp\u3000ideographic", "",
]
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('Unknown role: ' + message['role']) }}{% endif %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim"
    " + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
TOOLS_TEMPLATE = (
    "{%- set ns = namespace(found=false) -%}"
    "{%- for m in messages -%}{%- if m.role == 'system' -%}{%- set ns.found = true -%}{%- endif -%}{%- endfor -%}"
    "{%- if tools -%}Tools: {{ tools | tojson }}\n{%- endif -%}"
    "{%- if not ns.found %}[default system] Today is {{ strftime_now('%Y') }}.\n{% endif -%}"
    "{%- for m in messages -%}"
    "  {%- if loop.index0 > 5 %}{% break %}{% endif -%}"
    "  {{ m.role }}: {{ m.content if m.content is string else m.content | tojson }}"
    "{% if m.thinking is defined %} <think>{{ m.thinking }}</think>{% endif %}\n"
    "{%- endfor -%}"
    "{%- if add_generation_prompt %}assistant:{% endif -%}"
)
CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Be brief. Überall 東京 🚀"},
     {"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "  Hello there.  "},
     {"role": "user", "content": "2+2?"}],
    [{"role": "user", "content": "think", "reasoning_content": "hmm", "extra": None}],
]


# -- tokenizer.json files ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory):
    """SmolLM2's real tokenizer as transformers writes it (tokenizer.json + chat_template.jinja)."""
    path = default_generation_model_path()
    ref = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    folder = tmp_path_factory.mktemp("smollm2_tok")
    ref.save_pretrained(folder)
    return folder


def _train(pre_tokenizer, specials, ignore_merges=False) -> Backend:
    backend = Backend(models.BPE(ignore_merges=ignore_merges))
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(make_corpus(400, seed=3), trainer)
    return backend


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    """The GPT-2 layout: ByteLevel with its own regex, no prefix space, <|endoftext|>."""
    backend = _train(pre_tokenizers.ByteLevel(add_prefix_space=False), ["<|endoftext|>"])
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    folder = tmp_path_factory.mktemp("gpt2_tok")
    backend.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "model_max_length": 1024, "add_prefix_space": False}))
    return folder


@pytest.fixture(scope="module")
def llama3_dir(tmp_path_factory):
    """The Llama 3 layout: split regex + ByteLevel without its regex, ignore_merges, a BOS
    post-processor, and a chat template in tokenizer_config.json."""
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    backend = _train(pre, specials, ignore_merges=True)
    bos = backend.token_to_id("<|begin_of_text|>")
    backend.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
        special_tokens=[("<|begin_of_text|>", bos)])
    folder = tmp_path_factory.mktemp("llama3_tok")
    backend.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>", "model_max_length": 131072, "chat_template": LLAMA3_TEMPLATE,
        "model_input_names": ["input_ids", "attention_mask"]}))
    return folder


@pytest.fixture(params=["smollm2", "gpt2", "llama3"])
def pair(request):
    folder = request.getfixturevalue(f"{request.param}_dir")
    return Tokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)


def test_byte_level_bpe_equals_transformers(pair):
    ours, ref = pair
    assert len(ours) == len(ref) and ours.vocab_size == ref.vocab_size
    a = ours(CORPUS, return_offsets_mapping=True)
    b = ref(CORPUS, return_offsets_mapping=True)
    for i, text in enumerate(CORPUS):
        assert a["input_ids"][i] == b["input_ids"][i], text
        assert [tuple(o) for o in a["offset_mapping"][i]] == [tuple(o) for o in b["offset_mapping"][i]], text
    for ids in a["input_ids"][:150]:
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip)
    assert ours.convert_ids_to_tokens(a["input_ids"][20]) == ref.convert_ids_to_tokens(a["input_ids"][20])
    # byte-level decoding gives the text back exactly (no normalisation in these pipelines)
    plain = [t for t in CORPUS if "<|" not in t]
    assert [ours.decode(ours(t, add_special_tokens=False)["input_ids"]) for t in plain] == plain


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_side_equals_transformers(pair, side):
    ours, ref = pair
    if ref.pad_token is None:
        ours.pad_token = ref.pad_token = ref.eos_token
    texts = ["short", "a much longer text with several words 🚀", "東京"]
    a = ours(texts, padding=True, padding_side=side, return_tensors="np")
    b = ref(texts, padding=True, padding_side=side, return_tensors="np")
    assert np.array_equal(a["input_ids"], b["input_ids"])
    assert np.array_equal(a["attention_mask"], b["attention_mask"])
    column = 0 if side == "left" else -1
    assert a["attention_mask"][0, column] == 0   # the short row is padded on that side
    ours.padding_side = side   # the attribute works as the per-call argument does
    assert np.array_equal(ours(texts, padding=True, return_tensors="np")["input_ids"], b["input_ids"])


# -- chat templates --------------------------------------------------------------------------

def _both(pair_, **kw):
    ours, ref = pair_
    return ours.apply_chat_template(**kw), ref.apply_chat_template(**kw)


@pytest.mark.parametrize("name", ["smollm2", "llama3"])
def test_chat_template_equals_transformers(request, name):
    folder = request.getfixturevalue(f"{name}_dir")
    p = Tokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)
    assert p[0].chat_template == p[1].chat_template
    for chat in CHATS:
        for gen in (False, True):
            text, ref = _both(p, conversation=chat, add_generation_prompt=gen, tokenize=False)
            assert text == ref
            ids, ref_ids = _both(p, conversation=chat, add_generation_prompt=gen, return_dict=False)
            assert ids == ref_ids == p[0](text, add_special_tokens=False)["input_ids"]
    if p[1].pad_token is None:
        p[0].pad_token = p[1].pad_token = p[1].eos_token
    enc, ref = _both(p, conversation=CHATS[:2], add_generation_prompt=True, padding=True,
                     return_tensors="pt")   # a batch of conversations, padded
    assert torch.equal(enc["input_ids"], ref["input_ids"])
    assert torch.equal(enc["attention_mask"], ref["attention_mask"])
    continued, ref = _both(p, conversation=CHATS[1] + [{"role": "assistant", "content": "It is "}],
                           continue_final_message=True, tokenize=False)
    assert continued == ref and continued.rstrip().endswith("It is")


def test_template_features_equal_transformers(smollm2_dir):
    """namespace, loop controls, tojson of non-ASCII tools, strftime_now, reasoning aliases,
    None values dropped, documents, extra variables."""
    p = Tokenizer.from_pretrained(smollm2_dir), transformers.AutoTokenizer.from_pretrained(smollm2_dir)
    tools = [{"type": "function", "function": {"name": "météo", "parameters": {"city": "東京 <&>"}}}]
    long_chat = [{"role": "user", "content": f"message {i}"} for i in range(9)]
    for chat, kw in ((CHATS[2], {}), (CHATS[1], {"tools": tools}), (long_chat, {}),
                     ([{"role": "user", "content": [{"type": "text", "text": "blocks"}]}], {})):
        text, ref = _both(p, conversation=chat, chat_template=TOOLS_TEMPLATE, tokenize=False,
                          add_generation_prompt=True, **kw)
        assert text == ref
    assert f"Today is {datetime.now().year}." in text
    assert '"météo"' in _both(p, conversation=CHATS[0], tools=tools, chat_template=TOOLS_TEMPLATE,
                               tokenize=False)[0]
    assert "<think>hmm</think>" in _both(p, conversation=CHATS[2], chat_template=TOOLS_TEMPLATE,
                                         tokenize=False)[0]
    custom = "{{ greeting }} {{ eos_token }}{% for d in documents %}[{{ d.title }}]{% endfor %}"
    docs = [{"title": "A", "text": "a"}, {"title": "B", "text": "b"}]
    text, ref = _both(p, conversation=CHATS[0], chat_template=custom, tokenize=False, greeting="hey",
                      documents=docs)
    assert text == ref == "hey <|im_end|>[A][B]"


def test_templates_from_files_and_names(tmp_path, smollm2_dir):
    tok = Tokenizer.from_pretrained(smollm2_dir)   # chat_template.jinja beside tokenizer.json
    assert (smollm2_dir / "chat_template.jinja").is_file() and "<|im_start|>" in tok.chat_template
    # several named templates, in the list form of tokenizer_config.json
    tok.chat_template = [{"name": "default", "template": "D{{ messages[0].content }}"},
                         {"name": "tool_use", "template": "T{{ tools | length }}"},
                         {"name": "short", "template": "S"}]
    chat = CHATS[0]
    assert tok.apply_chat_template(chat, tokenize=False) == "DWhat is the capital of France?"
    assert tok.apply_chat_template(chat, tools=[{"a": 1}], tokenize=False) == "T1"
    assert tok.apply_chat_template(chat, chat_template="short", tokenize=False) == "S"
    tok.save_pretrained(tmp_path / "saved")
    again = Tokenizer.from_pretrained(tmp_path / "saved")
    assert again.chat_template == tok.chat_template
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path / "saved")   # transformers reads it
    assert ref.apply_chat_template(chat, tools=[{"a": 1}], tokenize=False) == "T1"
    # a chat_template.jinja wins over the config's entry, as in transformers
    (tmp_path / "saved" / "chat_template.jinja").write_text("J{{ messages | length }}")
    assert Tokenizer.from_pretrained(tmp_path / "saved").apply_chat_template(chat, tokenize=False) == "J1"


def test_sandbox_keeps_templates_in(smollm2_dir):
    tok = Tokenizer.from_pretrained(smollm2_dir)
    chat = [{"role": "user", "content": "hi"}]
    for evil in ("{{ ''.__class__.__mro__[1].__subclasses__() }}",
                 "{{ messages.__class__.__init__.__globals__ }}",
                 "{% set ns = namespace(_x=1) %}{{ ns }}",
                 "{{ cycler.__init__.__globals__.os }}"):
        with pytest.raises(TokenizerError, match="unsafe"):
            tok.apply_chat_template(chat, chat_template=evil, tokenize=False)
    with pytest.raises(TokenizerError, match="unsafe"):   # the caller's messages cannot change
        tok.apply_chat_template(chat, chat_template="{{ messages.append(1) }}", tokenize=False)
    assert chat == [{"role": "user", "content": "hi"}]


def test_chat_errors(gpt2_dir, llama3_dir):
    no_template = Tokenizer.from_pretrained(gpt2_dir)
    with pytest.raises(TokenizerError, match="no chat_template"):
        no_template.apply_chat_template(CHATS[0])
    tok = Tokenizer.from_pretrained(llama3_dir)
    with pytest.raises(ChatTemplateException, match="Unknown role: robot"):
        tok.apply_chat_template([{"role": "robot", "content": "beep"}])
    with pytest.raises(InputError, match="conversation is empty"):
        tok.apply_chat_template([])
    with pytest.raises(InputError, match=r"conversation\[0\] must be a dict"):
        tok.apply_chat_template(["not a message"])
    with pytest.raises(TokenizerError, match="syntax error at line 2"):
        tok.apply_chat_template(CHATS[0], chat_template="ok\n{% for x in %}")
    with pytest.raises(InputError, match="cannot both be set"):
        tok.apply_chat_template(CHATS[0], add_generation_prompt=True, continue_final_message=True)
    with pytest.raises(InputError, match="tools\\[0\\] must be a JSON-schema dict"):
        tok.apply_chat_template(CHATS[0], tools=[print])
