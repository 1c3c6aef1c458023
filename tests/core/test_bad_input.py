"""Bad input gets a loom error naming the file, key or argument, and loses nothing."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import pytest
import torch

import loom
from loom.modeling import weights

TINY = dict(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=8, max_position_embeddings=16)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = loom.BertForMaskedLM(loom.BertConfig(**TINY))
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    return model, folder


def test_missing_config(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(loom.EntryNotFoundError, match=f"config.json not found in the folder {tmp_path}"):
        loom.AutoModel.from_pretrained(tmp_path)


def test_invalid_json(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert", "hidden_size": 32,,}')
    with pytest.raises(loom.ConfigError, match=r"config\.json is not valid JSON.*line 1"):
        loom.AutoConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(loom.ConfigError, match="must hold a JSON object"):
        loom.AutoConfig.from_pretrained(tmp_path)


def test_unknown_model_type_lists_supported_before_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "not-a-model"}))
    # No weight file at all: the config error must come first.
    with pytest.raises(loom.UnknownModelTypeError, match=r"'not-a-model'.*loom supports .*bert"):
        loom.AutoModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(loom.UnknownModelTypeError, match="no model_type key"):
        loom.AutoConfig.from_pretrained(tmp_path)


def test_missing_weights(tmp_path, saved):
    _, folder = saved
    (folder / "model.safetensors").unlink()
    with pytest.raises(loom.EntryNotFoundError, match="no weights in .*model.safetensors"):
        loom.BertForMaskedLM.from_pretrained(folder)


@pytest.mark.parametrize("cut", [4, 100, -10])
def test_truncated_safetensors(saved, cut):
    _, folder = saved
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut > 0 else data[:cut])
    with pytest.raises(loom.CheckpointError, match="model.safetensors is truncated"):
        loom.BertForMaskedLM.from_pretrained(folder)


def test_corrupt_safetensors_header(saved):
    _, folder = saved
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[8:20] = b"\xff" * 12
    path.write_bytes(bytes(data))
    with pytest.raises(loom.CheckpointError, match="model.safetensors is corrupt"):
        loom.BertForMaskedLM.from_pretrained(folder)


def test_wrong_shape_names_tensor_and_shapes(saved):
    _, folder = saved
    cfg = json.loads((folder / "config.json").read_text())
    cfg["intermediate_size"] = 12
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(loom.ShapeMismatchError,
                       match=r"intermediate\.dense\.(weight|bias)' has shape \(8.*expects \(12"):
        loom.BertForMaskedLM.from_pretrained(folder)


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/loom-pwned",))


def test_pickle_that_runs_code_is_refused(tmp_path, saved):
    _, folder = saved
    evil = tmp_path / "evil"
    shutil.copytree(folder, evil)
    (evil / "model.safetensors").unlink()
    with open(evil / "pytorch_model.bin", "wb") as f:
        pickle.dump({"bert.embeddings.word_embeddings.weight": Exploit()}, f)
    if os.path.exists("/tmp/loom-pwned"):
        os.remove("/tmp/loom-pwned")
    with pytest.raises(loom.UnsafeCheckpointError, match="pytorch_model.bin is a pickle that would run code"):
        loom.BertForMaskedLM.from_pretrained(evil)
    assert not os.path.exists("/tmp/loom-pwned")


def test_plain_pytorch_bin_loads(tmp_path, saved):
    model, folder = saved
    plain = tmp_path / "plain"
    shutil.copytree(folder, plain)
    (plain / "model.safetensors").unlink()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(state, plain / "pytorch_model.bin")
    again = loom.BertForMaskedLM.from_pretrained(plain)
    ids = torch.randint(0, 40, (2, 5))
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).logits, model.eval()(input_ids=ids).logits)


def test_shard_index_outside_the_folder_is_refused(saved):
    model, folder = saved
    (folder / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": {k: "../../etc/passwd" for k in model.state_dict()}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(loom.CheckpointError, match="outside the checkpoint"):
        loom.BertForMaskedLM.from_pretrained(folder)


def test_interrupted_save_leaves_nothing_half_written(tmp_path, saved, monkeypatch):
    model, folder = saved
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real = weights.save_state_dict

    def crash(state, tmp, max_shard_size):
        real(state, tmp, "10KB")  # some shards written, then the disk "fails"
        raise OSError("No space left on device")

    monkeypatch.setattr(weights, "save_state_dict", crash)
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.add_(1.0)
    with pytest.raises(OSError, match="No space"):
        model.save_pretrained(folder)
    with pytest.raises(OSError, match="No space"):
        model.save_pretrained(tmp_path / "fresh")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not (tmp_path / "fresh").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folders left


def test_save_into_a_file_path(tmp_path, saved):
    model, _ = saved
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(loom.InputError, match="not a folder"):
        model.save_pretrained(target)


def test_bad_forward_arguments(saved):
    model, _ = saved
    with pytest.raises(loom.InputError, match="exactly one of input_ids and inputs_embeds"):
        model()
    with pytest.raises(loom.InputError, match=r"shape \(batch, tokens\)"):
        model(input_ids=torch.tensor([1, 2, 3]))
    with pytest.raises(loom.InputError, match="max_position_embeddings=16"):
        model(input_ids=torch.ones(1, 17, dtype=torch.long))
    with pytest.raises(loom.InputError, match=r"input_ids must be in \[0, 40\), found values from 1 to 40"):
        model(input_ids=torch.tensor([[1, 40]]))
    with pytest.raises(loom.InputError, match="dtype must be"):
        loom.BertForMaskedLM.from_pretrained(saved[1], dtype="float7")


def test_local_files_only_with_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(loom.OfflineError, match=r"config\.json of someone/tiny-bert.*local_files_only=True"):
        loom.AutoModel.from_pretrained("someone/tiny-bert", cache_dir=tmp_path / "cache", local_files_only=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(loom.OfflineError, match="HF_HUB_OFFLINE is set"):
        loom.AutoConfig.from_pretrained("someone/tiny-bert", cache_dir=tmp_path / "cache")
    with pytest.raises(loom.EntryNotFoundError, match="neither an existing folder nor a valid Hub repo id"):
        loom.AutoConfig.from_pretrained("./no/such/folder")
