"""`loom train CONFIG`: a YAML/JSON file in, a trained model and its log out."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import loom
from loom.cli import main
from loom.errors import ConfigError, InputError
from loom.training import recipe
from tests.helpers import minilm_dir

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny random BERT with all-MiniLM-L6-v2's tokenizer."""
    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    config = loom.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=48, max_position_embeddings=64)
    loom.BertModel(config).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        shutil.copy(minilm_dir() / name, folder / name)
    return folder


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


TOPICS = {"animal": ["the cat sleeps", "a dog barks", "the horse runs", "birds sing", "a cow eats grass"],
          "vehicle": ["the car drives", "a truck honks", "the train leaves", "planes fly", "a bus stops"]}


def test_loom_train_yaml(tmp_path, tiny_model, capsys):
    rows = [{"text": t, "label": k} for k, texts in TOPICS.items() for t in texts]
    write_rows(tmp_path / "train.jsonl", rows * 4)
    write_rows(tmp_path / "dev.jsonl", rows)
    (tmp_path / "run.yaml").write_text(f"""
model: {tiny_model}
task: sequence-classification
train_file: train.jsonl
eval_file: dev.jsonl
max_length: 16
args:
  output_dir: out
  num_train_epochs: 8
  per_device_train_batch_size: 8
  learning_rate: 0.003
  eval_strategy: epoch
  save_strategy: "no"
  disable_tqdm: true
""")
    assert main(["train", str(tmp_path / "run.yaml")]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "out"
    assert f"model and tokenizer saved to {out}" in printed and "eval_accuracy=1" in printed
    model = loom.AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.id2label == {0: "animal", 1: "vehicle"}
    tokenizer = loom.AutoTokenizer.from_pretrained(out)
    enc = tokenizer(["a dog barks", "the car drives"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.argmax(-1).tolist() == [0, 1]
    assert (out / "log.jsonl").is_file() and (out / "training_args.json").is_file()


def test_token_classification_labels_follow_first_subtokens(tmp_path, tiny_model):
    tokenizer = loom.AutoTokenizer.from_pretrained(tiny_model)
    rows = [{"tokens": ["Tokenization", "works"], "tags": ["B", "O"]}]
    items = recipe._encode(tokenizer, rows, {"max_length": 16}, "token-classification", {"B": 0, "O": 1},
                           tmp_path / "x.jsonl")
    words = tokenizer(["Tokenization", "works"], is_split_into_words=True).word_ids()
    assert len(items[0]["labels"]) == len(words) and words.count(0) > 1  # the first word splits
    expected = [-100 if w is None else (-100 if j and words[j - 1] == w else [0, 1][w]) for j, w in enumerate(words)]
    assert items[0]["labels"] == expected


def test_bad_configs(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"model": "m", "task": "summarise", "train_file": "t"}))
    with pytest.raises(ConfigError, match="task must be one of"):
        recipe.read_config(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps({"model": "m", "task": "masked-lm", "train_file": "t", "lr": 1}))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['lr'\]"):
        recipe.read_config(tmp_path / "b.json")
    (tmp_path / "c.yaml").write_text("model: m\ntask: masked-lm\n")
    with pytest.raises(ConfigError, match="needs 'train_file'"):
        recipe.read_config(tmp_path / "c.yaml")
    with pytest.raises(InputError, match="row 1 has no column 'text'"):
        recipe._column([{"text": "a"}, {"txt": "b"}], "text", tmp_path / "d.jsonl")
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
