"""`loom download REPO_ID [--revision R]` and `loom push FOLDER REPO_ID` against the test Hub."""

from __future__ import annotations

import torch

import loom
from loom.cli import main
from tests.hub.conftest import repo_files, tiny_model, tiny_tokenizer


def test_push_a_folder_then_download_and_load_it(hub, tmp_path, capsys):
    model, tokenizer = tiny_model(), tiny_tokenizer(tmp_path / "tok")
    folder = tmp_path / "saved"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    assert main(["push", str(folder), "acme/tiny", "--message", "from the CLI"]) == 0
    url = capsys.readouterr().out.strip()
    commit = hub.commit_of("acme/tiny")
    assert url.endswith(f"/acme/tiny/commit/{commit.oid}") and commit.message == "from the CLI"
    card = commit.files["README.md"].data.decode()
    assert "| Architecture | BertForMaskedLM |" in card and "| Tokenizer | included" in card
    assert "| Tensor elements in the weights |" in card  # no model object: counted from the files
    hub.add_commit("acme/tiny", {"pytorch_model.bin": b"old", "onnx/model.onnx": b"x", "tf_model.h5": b"y"})

    cache = tmp_path / "cache"
    assert main(["download", "acme/tiny", "--revision", commit.oid, "--cache-dir", str(cache)]) == 0
    snapshot = capsys.readouterr().out.strip()
    assert snapshot.endswith(f"models--acme--tiny/snapshots/{commit.oid}")
    names = sorted(p.name for p in (cache / "models--acme--tiny" / "snapshots" / commit.oid).iterdir())
    assert names == sorted(["README.md", "config.json", "model.safetensors", "special_tokens_map.json",
                            "tokenizer.json", "tokenizer_config.json"])
    assert main(["download", "acme/tiny", "--cache-dir", str(cache)]) == 0  # main: the .bin etc. are skipped
    assert not hub.requests(r"pytorch_model|onnx|\.h5")
    hub.stop()
    again = loom.BertForMaskedLM.from_pretrained("acme/tiny", revision=commit.oid, cache_dir=cache)
    ids = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).logits, model(input_ids=ids).logits)


def test_download_errors_are_reported(hub, tmp_path, capsys):
    hub.add_commit("acme/tiny", repo_files(tiny_model(), None, tmp_path))
    assert main(["download", "acme/tiny", "--revision", "nope", "--cache-dir", str(tmp_path / "c")]) == 2
    assert "revision 'nope' not found in acme/tiny" in capsys.readouterr().err
    assert main(["push", str(tmp_path / "empty"), "acme/tiny"]) == 2
    assert "nothing to push" in capsys.readouterr().err
