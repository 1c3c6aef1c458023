"""Config: typed fields, unknown keys kept, JSON round trip key for key, overrides."""

from __future__ import annotations

import json

import pytest
import transformers

import loom
from tests.helpers import minilm_dir


def test_real_config_round_trips_key_for_key(tmp_path):
    src = json.loads((minilm_dir() / "config.json").read_text())
    cfg = loom.AutoConfig.from_pretrained(minilm_dir())
    assert isinstance(cfg, loom.BertConfig) and cfg.hidden_size == 384 and cfg.num_hidden_layers == 6
    assert cfg.gradient_checkpointing is False  # an unknown key, kept and readable
    cfg.save_pretrained(tmp_path)
    out = json.loads((tmp_path / "config.json").read_text())
    for key, value in src.items():
        assert out[key] == value, key
    assert loom.BertConfig.from_pretrained(tmp_path) == cfg


def test_null_keys_in_a_transformers_file_stay_null(tmp_path):
    data = {"model_type": "bert", "id2label": {"0": "a", "1": "b"}, "label2id": None, "bos_token_id": None}
    (tmp_path / "config.json").write_text(json.dumps(data))
    cfg = loom.AutoConfig.from_pretrained(tmp_path)
    assert cfg.label2id == {"a": 0, "b": 1}  # derived for use
    out = cfg.to_dict()
    assert out["label2id"] is None and out["bos_token_id"] is None and out["id2label"] == {"0": "a", "1": "b"}


def test_transformers_config_reads_back_identically(tmp_path):
    ref = transformers.BertConfig(hidden_size=48, num_attention_heads=6, num_labels=3,
                                  id2label={0: "neg", 1: "neu", 2: "pos"},
                                  problem_type="single_label_classification", dtype="bfloat16")
    ref.save_pretrained(tmp_path / "hf")
    ours = loom.BertConfig.from_pretrained(tmp_path / "hf")
    assert ours.id2label == {0: "neg", 1: "neu", 2: "pos"} and ours.label2id["pos"] == 2
    assert ours.num_labels == 3 and ours.dtype == "bfloat16"
    ours.save_pretrained(tmp_path / "loom")
    back = transformers.BertConfig.from_pretrained(tmp_path / "loom")
    a, b = ref.to_dict(), back.to_dict()
    for key in ("hidden_size", "num_attention_heads", "id2label", "problem_type", "dtype"):
        assert a[key] == b[key], key


def test_torch_dtype_key_is_read_and_written_back(tmp_path):
    data = {"model_type": "bert", "hidden_size": 32, "num_attention_heads": 4, "torch_dtype": "float16"}
    (tmp_path / "config.json").write_text(json.dumps(data))
    cfg = loom.AutoConfig.from_pretrained(tmp_path)
    assert cfg.dtype == "float16"
    assert cfg.to_dict()["torch_dtype"] == "float16" and "dtype" not in cfg.to_dict()


def test_overrides_num_labels_and_defaults():
    cfg = loom.BertConfig.from_dict({"model_type": "bert"}, num_labels=4, hidden_dropout_prob=0.0)
    assert cfg.num_labels == 4 and cfg.id2label == {i: f"LABEL_{i}" for i in range(4)}
    assert cfg.hidden_dropout_prob == 0.0
    cfg.num_labels = 2
    assert cfg.id2label == {0: "LABEL_0", 1: "LABEL_1"} and cfg.label2id == {"LABEL_0": 0, "LABEL_1": 1}
    assert loom.BertConfig().num_labels == 2
    assert cfg.replace(hidden_size=96).hidden_size == 96 and cfg.hidden_size == 768


def test_config_overrides_at_model_load(tmp_path):
    loom.BertConfig(hidden_size=16, num_attention_heads=2, num_hidden_layers=1, intermediate_size=8,
                    vocab_size=20).save_pretrained(tmp_path)
    cfg = loom.AutoConfig.from_pretrained(tmp_path, output_hidden_states=True)
    assert cfg.output_hidden_states is True


@pytest.mark.parametrize("key,value,expected", [
    ("hidden_size", "big", "hidden_size expects int"),
    ("hidden_dropout_prob", "x", "hidden_dropout_prob expects float"),
    ("num_hidden_layers", 0, "num_hidden_layers must be positive"),
    ("hidden_act", "gelu_fancy", "hidden_act='gelu_fancy' is not supported"),
    ("problem_type", "ranking", "problem_type must be one of"),
])
def test_invalid_values_name_the_key(key, value, expected):
    with pytest.raises(loom.ConfigError, match=expected):
        loom.BertConfig.from_dict({"model_type": "bert", key: value})


def test_hidden_size_not_divisible_by_heads(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "bert", "hidden_size": 30, "num_attention_heads": 4}))
    with pytest.raises(loom.ConfigError, match="hidden_size=30 is not divisible by num_attention_heads=4"):
        loom.AutoModel.from_pretrained(tmp_path)


def test_wrong_model_type_for_class(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt9"}))
    with pytest.raises(loom.ConfigError, match="'gpt9'"):
        loom.BertConfig.from_pretrained(tmp_path)
