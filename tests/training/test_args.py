"""TrainingArguments checks, the optimizer's decay groups and the learning-rate schedules."""

from __future__ import annotations

import math

import pytest
import torch

from loom import ConfigError, TrainingArguments
from loom.training.optim import create_optimizer, get_scheduler
from tests.training.common import tiny_bert


def test_defaults_and_derived_values(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), eval_strategy="steps", logging_steps=7)
    assert args.eval_steps == 7  # eval_steps defaults to logging_steps
    assert args.report_to == []
    best = TrainingArguments(output_dir=str(tmp_path), eval_strategy="epoch", save_strategy="epoch",
                             load_best_model_at_end=True)
    assert best.metric_for_best_model == "loss" and best.greater_is_better is False
    acc = TrainingArguments(output_dir=str(tmp_path), metric_for_best_model="eval_accuracy")
    assert acc.metric_for_best_model == "accuracy" and acc.greater_is_better is True
    assert TrainingArguments(warmup_ratio=0.1).warmup_for(95) == 10
    assert TrainingArguments(warmup_steps=3, warmup_ratio=0.5).warmup_for(100) == 3


@pytest.mark.parametrize("kwargs, words", [
    (dict(load_best_model_at_end=True), ["load_best_model_at_end", "eval_strategy"]),
    (dict(load_best_model_at_end=True, eval_strategy="epoch", save_strategy="steps"),
     ["save_strategy='steps'", "eval_strategy='epoch'"]),
    (dict(load_best_model_at_end=True, eval_strategy="steps", eval_steps=3, save_steps=10),
     ["save_steps=10", "eval_steps=3"]),
    (dict(eval_strategy="sometimes"), ["eval_strategy", "sometimes"]),
    (dict(lr_scheduler_type="polynomial"), ["lr_scheduler_type", "polynomial"]),
    (dict(warmup_ratio=1.5), ["warmup_ratio", "1.5"]),
    (dict(per_device_train_batch_size=0), ["per_device_train_batch_size", "0"]),
    (dict(gradient_accumulation_steps=1.5), ["gradient_accumulation_steps"]),
    (dict(max_steps=0), ["max_steps"]),
    (dict(num_train_epochs=0), ["num_train_epochs"]),
    (dict(adam_beta2=1.0), ["adam_beta2"]),
    (dict(save_total_limit=0), ["save_total_limit"]),
    (dict(report_to="wandb"), ["report_to", "wandb"]),
    (dict(ddp_backend="mpi"), ["ddp_backend", "mpi"]),
])
def test_invalid_combinations_raise_at_construction(tmp_path, kwargs, words):
    with pytest.raises(ConfigError) as e:
        TrainingArguments(output_dir=str(tmp_path), **kwargs)
    for w in words:
        assert w in str(e.value)


def test_output_dir_that_is_a_file(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="a_file.*is a file"):
        TrainingArguments(output_dir=str(f))


def test_from_dict_names_unknown_keys():
    with pytest.raises(ConfigError, match=r"config.yaml: unknown training argument\(s\) \['learning_rat'\]"):
        TrainingArguments.from_dict({"learning_rat": 1e-3}, source="config.yaml")
    args = TrainingArguments.from_dict({"learning_rate": 1e-3, "seed": 3})
    assert (args.learning_rate, args.seed) == (1e-3, 3)
    assert TrainingArguments.from_dict(args.to_dict()) == args


def test_weight_decay_only_on_2d_weights():
    model = tiny_bert()
    opt = create_optimizer(model, TrainingArguments(weight_decay=0.1, learning_rate=1e-3))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim == 2 for p in decay["params"])
    assert all(p.ndim == 1 for p in no_decay["params"])
    assert any("LayerNorm" in names[id(p)] for p in no_decay["params"])
    assert "bert.embeddings.word_embeddings.weight" in {names[id(p)] for p in decay["params"]}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def _lrs(name, warmup, total, steps):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=2.0)
    sched = get_scheduler(name, opt, warmup, total)
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


def test_schedules_by_hand():
    assert _lrs("linear", 2, 6, 7) == pytest.approx([0.0, 1.0, 2.0, 1.5, 1.0, 0.5, 0.0])
    cos = [2.0 * 0.5 * (1 + math.cos(math.pi * (s - 2) / 4)) for s in range(2, 7)]
    assert _lrs("cosine", 2, 6, 7) == pytest.approx([0.0, 1.0, *cos])
    assert _lrs("constant", 2, 6, 4) == pytest.approx([2.0] * 4)
    assert _lrs("constant_with_warmup", 4, 6, 6) == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])


def test_arguments_need_no_torch():
    import subprocess
    import sys

    code = ("import sys, loom; loom.TrainingArguments(output_dir='x', eval_strategy='epoch'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
