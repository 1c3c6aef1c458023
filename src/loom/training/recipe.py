"""`loom train CONFIG.yaml|json`: the common fine-tuning run from one file.

    model: path/or/hub-id                 # a model folder or Hub repo with a tokenizer
    task: sequence-classification         # | token-classification | masked-lm | causal-lm
    train_file: train.jsonl               # .jsonl, .json (a list of objects) or .csv
    eval_file: dev.jsonl                  # optional
    text_column: text                     # token-classification: a list of words ("tokens")
    text_pair_column: null                # optional second text of a pair
    label_column: label                   # token-classification: a list of tags ("tags")
    labels: [negative, positive]          # optional: the label names, in id order
    max_length: 128
    args: {output_dir: out, num_train_epochs: 3, eval_strategy: epoch}

Relative paths are read from the config file's folder. The run trains, evaluates, and saves
the model and tokenizer to `args.output_dir`; `run()` returns where everything is.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError
from ..io import read_json

TASKS = {
    "sequence-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "masked-lm": "AutoModelForMaskedLM",
    "causal-lm": "AutoModelForCausalLM",
}
KEYS = {"model", "task", "train_file", "eval_file", "text_column", "text_pair_column", "label_column",
        "labels", "max_length", "args", "ignore_mismatched_sizes"}


def read_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"training config {path} does not exist")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"training config {path} is not valid YAML: {e}") from None
    else:
        config = read_json(path, what="training config")
    if not isinstance(config, dict):
        raise ConfigError(f"training config {path} must hold a mapping, found {type(config).__name__}")
    unknown = sorted(set(config) - KEYS)
    if unknown:
        raise ConfigError(f"training config {path}: unknown key(s) {unknown}; known: {sorted(KEYS)}")
    for key in ("model", "task", "train_file"):
        if key not in config:
            raise ConfigError(f"training config {path} needs {key!r}")
    if config["task"] not in TASKS:
        raise ConfigError(f"training config {path}: task must be one of {sorted(TASKS)}, found {config['task']!r}")
    return config


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise InputError(f"data file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        return list(csv.DictReader(text.splitlines()))
    if path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise InputError(f"{path} line {n} is not JSON: {e.msg}") from None
        return rows
    if path.suffix == ".json":
        rows = json.loads(text)
        if isinstance(rows, list):
            return rows
    raise InputError(f"data file {path} must be .jsonl, .csv or a .json list of objects")


def _column(rows: list[dict], name: str, path: Path) -> list:
    for i, row in enumerate(rows):
        if name not in row:
            raise InputError(f"{path} row {i} has no column {name!r}; found {sorted(row)}")
    return [row[name] for row in rows]


def _label_names(config: dict, rows: list[dict], column: str, per_token: bool, path: Path) -> list[str]:
    if config.get("labels"):
        return [str(x) for x in config["labels"]]
    values = _column(rows, column, path)
    flat = {str(v) for row in values for v in row} if per_token else {str(v) for v in values}
    return sorted(flat)


def _encode(tokenizer, rows, config, task, label2id, path: Path) -> list[dict]:
    text_col = config.get("text_column") or ("tokens" if task == "token-classification" else "text")
    texts = _column(rows, text_col, path)
    pairs = _column(rows, config["text_pair_column"], path) if config.get("text_pair_column") else None
    enc = tokenizer(texts, pairs, truncation=True, max_length=config.get("max_length", 128),
                    is_split_into_words=task == "token-classification")
    items = [{k: enc[k][i] for k in enc.keys()} for i in range(len(texts))]
    if task in ("masked-lm", "causal-lm"):
        return items
    label_col = config.get("label_column") or ("tags" if task == "token-classification" else "label")
    for i, (item, label) in enumerate(zip(items, _column(rows, label_col, path))):
        item["labels"] = _label_ids(label, label2id, task, enc, i, f"{path} row {i}")
    return items


def _label_ids(label, label2id, task, enc, i, where):
    def lookup(value):
        if str(value) not in label2id:
            raise InputError(f"{where}: label {value!r} is not one of {sorted(label2id)}")
        return label2id[str(value)]

    if task == "sequence-classification":
        return lookup(label)
    out, previous = [], None  # the first sub-token of each word carries its tag
    for word in enc.word_ids(i):
        out.append(-100 if word is None or word == previous else lookup(label[word]))
        previous = word
    return out


def run(config_path: str | Path) -> dict[str, Any]:
    import loom
    from ..auto import AutoTokenizer
    from .args import TrainingArguments
    from .trainer import Trainer

    config_path = Path(config_path)
    config, base = read_config(config_path), config_path.parent
    task = config["task"]
    values = dict(config.get("args") or {})
    values["output_dir"] = str(base / values.get("output_dir", "loom_train_output"))
    args = TrainingArguments.from_dict(values, source=str(config_path))
    model_path = config["model"] if not (base / str(config["model"])).exists() else base / config["model"]
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train_path = base / config["train_file"]
    train_rows = read_rows(train_path)
    overrides, label2id = {}, {}
    if task in ("sequence-classification", "token-classification"):
        names = _label_names(config, train_rows, config.get("label_column") or (
            "tags" if task == "token-classification" else "label"), task == "token-classification", train_path)
        label2id = {n: i for i, n in enumerate(names)}
        overrides = dict(num_labels=len(names), id2label=dict(enumerate(names)), label2id=label2id)
    auto = getattr(loom, TASKS[task], None)
    if auto is None:
        raise ConfigError(f"task {task!r} needs loom.{TASKS[task]}, which this version of loom does not have")
    model = auto.from_pretrained(
        model_path, ignore_mismatched_sizes=bool(config.get("ignore_mismatched_sizes", False)), **overrides)
    train = _encode(tokenizer, train_rows, config, task, label2id, train_path)
    dev = None
    if config.get("eval_file"):
        dev_path = base / config["eval_file"]
        dev = _encode(tokenizer, read_rows(dev_path), config, task, label2id, dev_path)
    collator = _collator(task, tokenizer)
    metrics = accuracy if task in ("sequence-classification", "token-classification") else None
    trainer = Trainer(model, args, train_dataset=train, eval_dataset=dev, data_collator=collator,
                      processing_class=tokenizer, compute_metrics=metrics)
    result = trainer.train()
    summary: dict[str, Any] = {"output_dir": args.output_dir, "train": result.metrics}
    if dev is not None:
        summary["eval"] = trainer.evaluate()
    trainer.save_model()
    return summary


def _collator(task: str, tokenizer):
    from . import data

    if task == "token-classification":
        return data.DataCollatorForTokenClassification(tokenizer)
    if task in ("masked-lm", "causal-lm"):
        return data.DataCollatorForLanguageModeling(tokenizer, mlm=task == "masked-lm")
    return data.DataCollatorWithPadding(tokenizer)


def accuracy(prediction) -> dict[str, float]:
    """Share of labels (not -100) whose argmax prediction is right."""
    import numpy as np

    predicted = np.asarray(prediction.predictions).argmax(-1)
    labels = np.asarray(prediction.label_ids)
    keep = labels != -100
    return {"accuracy": float((predicted[keep] == labels[keep]).mean()) if keep.any() else float("nan")}


__all__ = ["run", "read_config", "accuracy"]
