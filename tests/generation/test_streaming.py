"""Stop strings and streamers, with a tiny character-level tokenizer over the tiny model's
61-token vocabulary."""

from __future__ import annotations

import io
import string
import threading

import pytest
import torch
import transformers
from tokenizers import Tokenizer as Backend
from tokenizers import decoders, models

from loom import TextIteratorStreamer, TextStreamer
from loom.errors import InputError
from loom.generation.stopping import StopStrings
from loom.preprocessing.tokenizer import Tokenizer
from tests.generation.common import VOCAB, llama_pair

# "abcdef" lets transformers' StopStringCriteria read this vocabulary (it tokenizes that word).
TOKENS = ["<pad>", "<s>", "</s>", " ", "\n", *string.ascii_lowercase, "st", "op", "to", "pp", "ed", "ab", "é", "abcdef"]
TOKENS += [f"x{i}" for i in range(VOCAB - len(TOKENS))]


def backend() -> Backend:
    b = Backend(models.WordLevel({t: i for i, t in enumerate(TOKENS)}, unk_token="<pad>"))
    b.decoder = decoders.Fuse()  # text is the tokens glued together
    return b


@pytest.fixture(scope="module")
def tok():
    return Tokenizer(backend(), {})


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return llama_pair(tmp_path_factory.mktemp("llama"))


def ids_of(*tokens) -> list[int]:
    return [TOKENS.index(t) for t in tokens]


def test_stop_string_must_overlap_the_last_token(tok):
    crit = StopStrings(["stop"], tok)
    cases = {("st", "op"): True, ("s", "to", "pp", "e", "d"): False, ("s", "to", "pp"): True, ("a", "st", "op"): True,
             ("st", "op", "a"): False, ("l", "a", "s", "to", "p"): True}
    for tokens, done in cases.items():
        assert crit(torch.tensor([ids_of(*tokens)])).tolist() == [done], tokens


def test_stop_strings_end_generation_as_transformers(tok, model):
    ours, ref = model
    prompt = torch.tensor([ids_of("a", "b", "c")])
    free = ours.generate(prompt, max_new_tokens=20, eos_token_id=None)[0].tolist()
    new = free[3:]
    stop = tok.decode(new[4:6])  # a string the model writes after four tokens
    expect = next(j for j in range(len(new)) if stop in tok.decode(free[:3 + j + 1]))
    out = ours.generate(prompt, max_new_tokens=20, eos_token_id=None, stop_strings=stop, tokenizer=tok)[0].tolist()
    assert out == free[:3 + expect + 1] and len(out) < len(free)
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend())
    theirs = ref.generate(prompt, max_new_tokens=20, do_sample=False, stop_strings=stop, tokenizer=hf_tok)
    assert theirs[0].tolist() == out


def test_text_streamer_settles_words(tok):
    out = io.StringIO()
    streamer = TextStreamer(tok, stream=out)
    writes = []
    streamer.on_text = lambda text, stream_end=False: writes.append((text, stream_end))
    streamer.put(torch.tensor([ids_of("a", "b")]))  # the prompt
    for t in ("c", " ", "d", "e", " ", "f", "\n", "g", "h"):
        streamer.put(torch.tensor(ids_of(t)))
    streamer.end()
    pieces = [w for w, _ in writes]
    assert "".join(pieces) == "abc de f\ngh"
    assert pieces == ["abc ", "de ", "f\n", "gh"]  # whole words only, flushed on line ends and at the end
    assert writes[-1][1] is True
    with pytest.raises(InputError, match="batch of one"):
        TextStreamer(tok).put(torch.tensor([[1], [2]]))


def test_streamers_through_generate(tok, model):
    ours, _ = model
    prompt = torch.tensor([ids_of("a", " ", "b")])
    out = io.StringIO()
    ids = ours.generate(prompt, max_new_tokens=15, streamer=TextStreamer(tok, stream=out))
    assert out.getvalue() == tok.decode(ids[0]) + "\n"
    out = io.StringIO()
    ours.generate(prompt, max_new_tokens=15, streamer=TextStreamer(tok, skip_prompt=True, stream=out))
    assert out.getvalue() == tok.decode(ids[0, 3:]) + "\n"
    streamer = TextIteratorStreamer(tok, skip_prompt=True, timeout=60)
    thread = threading.Thread(target=ours.generate, args=(prompt,), kwargs=dict(max_new_tokens=15, streamer=streamer))
    thread.start()
    text = "".join(streamer)
    thread.join()
    assert text == tok.decode(ids[0, 3:])
