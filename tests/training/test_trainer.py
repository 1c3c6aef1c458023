"""The Trainer on tiny BERTs: it learns, accumulates like a big batch, takes every kind of
dataset, evaluates in a stream, calls its callbacks, keeps the best checkpoint, and refuses
bad input before the first step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers

import loom
from loom import InputError
from loom.training import (DataCollatorForTokenClassification, DataCollatorWithPadding, EarlyStoppingCallback,
                           Trainer, TrainerCallback, TrainingArguments)
from loom.training import trainer as trainer_module
from loom.training.loader import epoch_order
from tests.helpers import assert_close
from tests.training.common import (PAD, max_weight_diff, tiny_bert, token_items, topic_items, weights,
                                   weights_equal)

PADDING = DataCollatorWithPadding(pad_token_id=PAD)
TOKENS = DataCollatorForTokenClassification(pad_token_id=PAD)
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def args_for(tmp_path, **kw):
    values = dict(output_dir=str(tmp_path / "out"), learning_rate=2e-3, logging_steps=1000, save_strategy="no",
                  disable_tqdm=True, seed=11)
    values.update(kw)
    return TrainingArguments(**values)


def accuracy(p):
    return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}


def test_tiny_bert_learns_a_synthetic_classification(tmp_path):
    model = tiny_bert()
    args = args_for(tmp_path, num_train_epochs=5, per_device_train_batch_size=16, learning_rate=3e-3,
                    eval_strategy="epoch", logging_steps=5, report_to="tensorboard")
    trainer = Trainer(model, args, train_dataset=topic_items(300, seed=0), eval_dataset=topic_items(90, seed=1),
                      data_collator=PADDING, compute_metrics=accuracy)
    result = trainer.train()
    evals = [h for h in trainer.state.log_history if "eval_accuracy" in h]
    assert len(evals) == 5
    assert evals[-1]["eval_accuracy"] >= 0.95, evals
    assert evals[-1]["eval_loss"] < 0.5 * evals[0]["eval_loss"]
    assert result.global_step == 5 * 19 and result.training_loss < 1.0
    out = tmp_path / "out"
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x][:3] == [5, 10, 15]
    assert sum("eval_accuracy" in x for x in lines) == 5
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((out / "runs").glob("events.out.tfevents.*"))


def _train(tmp_path, name, batch, accum, items, collator, steps=5, cls="BertForSequenceClassification", **kw):
    model = tiny_bert(cls, **NO_DROPOUT)
    args = args_for(tmp_path / name, max_steps=steps, per_device_train_batch_size=batch,
                    gradient_accumulation_steps=accum, weight_decay=0.01, warmup_steps=1, **kw)
    trainer = Trainer(model, args, train_dataset=items, data_collator=collator)
    trainer.train()
    return weights(model), trainer


def test_accumulation_4x2_equals_batch_8(tmp_path):
    items = topic_items(40, seed=3)
    big, _ = _train(tmp_path, "big", 8, 1, items, PADDING)
    acc, _ = _train(tmp_path, "acc", 2, 4, items, PADDING)
    assert max_weight_diff(big, acc) <= 1e-6
    assert max_weight_diff(big, weights(tiny_bert(**NO_DROPOUT))) > 1e-3  # training moved them


def test_token_weighted_accumulation_equals_batch_8(tmp_path, monkeypatch):
    items = token_items(40, seed=4)  # 0 to 12 labelled tokens per item
    big, _ = _train(tmp_path, "big", 8, 1, items, TOKENS, cls="BertForTokenClassification")
    acc, _ = _train(tmp_path, "acc", 2, 4, items, TOKENS, cls="BertForTokenClassification")
    assert max_weight_diff(big, acc) <= 1e-6
    # Averaging the micro-batch means instead (every micro-batch weighted alike) is off:
    monkeypatch.setattr(trainer_module, "label_count", lambda batch, shift: 1)
    naive, _ = _train(tmp_path, "naive", 2, 4, items, TOKENS, cls="BertForTokenClassification")
    assert max_weight_diff(big, naive) > 1e-4


def test_logged_loss_is_the_token_weighted_window_mean(tmp_path):
    items = token_items(16, seed=5)
    _, trainer = _train(tmp_path, "log", 2, 3, items, TOKENS, steps=1, cls="BertForTokenClassification",
                        logging_steps=1, learning_rate=0.0)
    first = epoch_order(len(items), 11, 0)[:6]  # the window of step 1: 3 micro-batches of 2
    model = tiny_bert("BertForTokenClassification", **NO_DROPOUT)
    batch = TOKENS([items[i] for i in first])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = F.cross_entropy(logits.reshape(-1, 3), batch["labels"].reshape(-1), ignore_index=-100)
    logged = trainer.state.log_history[0]
    assert logged["step"] == 1 and logged["loss"] == pytest.approx(expected.item(), abs=1e-5)


def test_every_kind_of_dataset_gives_the_same_run(tmp_path):
    import datasets

    items = topic_items(24, seed=6, extra_columns=True)  # "text" and "id" are not model inputs

    class TorchSet(torch.utils.data.Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            return {k: torch.tensor(v) if k != "text" else v for k, v in items[i].items()}

    hf = datasets.Dataset.from_list(items)
    runs = [_train(tmp_path, name, 4, 1, data, PADDING, steps=4)[0]
            for name, data in (("list", items), ("torch", TorchSet()), ("hf", hf))]
    assert weights_equal(runs[0], runs[1]) and weights_equal(runs[0], runs[2])
    trainer = Trainer(tiny_bert(), args_for(tmp_path), train_dataset=hf)
    assert trainer.train_dataset.column_names == ["input_ids", "labels"]  # unused columns dropped


def test_evaluation_streams_and_predict_keeps_order(tmp_path, monkeypatch):
    model = tiny_bert(**NO_DROPOUT).eval()
    items = topic_items(10, seed=7)
    trainer = Trainer(model, args_for(tmp_path, per_device_eval_batch_size=4), data_collator=PADDING)
    full = PADDING(items)
    with torch.no_grad():
        out = model(input_ids=full["input_ids"], attention_mask=full["attention_mask"], labels=full["labels"])
    # Without compute_metrics nothing is gathered: the loss is reduced batch by batch.
    monkeypatch.setattr(trainer_module, "assemble", lambda parts: pytest.fail("predictions were kept"))
    metrics = trainer.evaluate(items)
    assert metrics["eval_loss"] == pytest.approx(out.loss.item(), abs=1e-6)
    monkeypatch.undo()
    pred = trainer.predict(items)
    assert isinstance(pred.predictions, np.ndarray) and pred.predictions.shape == (10, 3)
    assert_close(torch.from_numpy(pred.predictions), out.logits, 1e-5, "predict")
    assert pred.label_ids.tolist() == [x["labels"] for x in items]
    assert pred.metrics["test_loss"] == pytest.approx(out.loss.item(), abs=1e-6)


def test_token_predictions_are_padded_across_batches(tmp_path):
    model = tiny_bert("BertForTokenClassification", **NO_DROPOUT).eval()
    items = token_items(6, seed=8)
    trainer = Trainer(model, args_for(tmp_path, per_device_eval_batch_size=4), data_collator=TOKENS)
    pred = trainer.predict(items)
    longest = max(len(x["input_ids"]) for x in items)
    assert pred.predictions.shape == (6, longest, 3) and pred.label_ids.shape == (6, longest)
    for i, item in enumerate(items):
        n = len(item["input_ids"])
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([item["input_ids"]])).logits[0]
        assert_close(torch.from_numpy(pred.predictions[i, :n]), logits, 1e-5, f"item {i}")
        assert (pred.label_ids[i, n:] == -100).all() and pred.label_ids[i, :n].tolist() == item["labels"]


class Recorder(TrainerCallback):
    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            return lambda args, state, control, **kw: self.events.append(name)
        return super().__getattribute__(name)


def test_callback_events_in_order(tmp_path):
    rec = Recorder()
    args = args_for(tmp_path, max_steps=2, per_device_train_batch_size=8, logging_steps=2,
                    eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2)
    Trainer(tiny_bert(), args, train_dataset=topic_items(16, 1), eval_dataset=topic_items(4, 2),
            data_collator=PADDING, callbacks=[rec]).train()
    step = ["on_step_begin", "on_step_end"]
    assert rec.events == ["on_init_end", "on_train_begin", "on_epoch_begin", *step, *step, "on_log",
                          "on_log", "on_evaluate", "on_save", "on_epoch_end", "on_log", "on_train_end"]


def test_early_stopping(tmp_path):
    args = args_for(tmp_path, max_steps=50, per_device_train_batch_size=4, learning_rate=0.0,
                    eval_strategy="steps", eval_steps=1, metric_for_best_model="loss")
    trainer = Trainer(tiny_bert(), args, train_dataset=topic_items(40, 1), eval_dataset=topic_items(6, 2),
                      data_collator=PADDING, callbacks=[EarlyStoppingCallback(early_stopping_patience=2)])
    trainer.train()
    assert trainer.state.global_step == 3  # best at 1, no better at 2 and 3


def test_rotation_keeps_the_best_and_it_is_loaded_at_the_end(tmp_path):
    scores = iter([0.5, 0.9, 0.3, 0.2, 0.1])
    args = args_for(tmp_path, max_steps=5, per_device_train_batch_size=4, eval_strategy="steps", eval_steps=1,
                    save_strategy="steps", save_steps=1, save_total_limit=1, load_best_model_at_end=True,
                    metric_for_best_model="score")
    model = tiny_bert()
    trainer = Trainer(model, args, train_dataset=topic_items(40, 1), eval_dataset=topic_items(4, 2),
                      data_collator=PADDING, compute_metrics=lambda p: {"score": next(scores)})
    trainer.train()
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-5"]
    assert trainer.state.best_model_checkpoint == str(out / "checkpoint-2") and trainer.state.best_metric == 0.9
    best = loom.BertForSequenceClassification.from_pretrained(out / "checkpoint-2")
    last = loom.BertForSequenceClassification.from_pretrained(out / "checkpoint-5")
    assert weights_equal(weights(model), weights(best)) and not weights_equal(weights(model), weights(last))


def test_checkpoints_load_in_loom_and_transformers(tmp_path):
    model = tiny_bert()
    args = args_for(tmp_path, max_steps=3, per_device_train_batch_size=4, save_strategy="steps", save_steps=3)
    Trainer(model, args, train_dataset=topic_items(20, 1), data_collator=PADDING).train()
    folder = tmp_path / "out" / "checkpoint-3"
    batch = PADDING(topic_items(5, 9))
    inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    with torch.no_grad():
        expected = model.eval()(**inputs).logits
        ours = loom.BertForSequenceClassification.from_pretrained(folder)(**inputs).logits
        ref = transformers.BertForSequenceClassification.from_pretrained(folder).eval()(**inputs).logits
    assert torch.equal(ours, expected)
    assert_close(ref, expected, 1e-5, "transformers")


def test_bf16_autocast_trains(tmp_path):
    model = tiny_bert()
    args = args_for(tmp_path, max_steps=30, per_device_train_batch_size=16, learning_rate=3e-3, bf16=True,
                    logging_steps=5)
    trainer = Trainer(model, args, train_dataset=topic_items(96, 1), data_collator=PADDING)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert model.dtype == torch.float32 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("items, words", [
    ([{"text": "no ids", "labels": 0}], ["train_dataset[0]", "input_ids", "'text'"]),
    (topic_items(3, 1) + [{"input_ids": [1, 5, 2], "labels": 3}], ["train_dataset[3]", "label 3", "3 classes"]),
    ([{"input_ids": [1, 5, 2]}], ["train_dataset[0]", "no 'labels'"]),
    ([], ["train_dataset is empty"]),
    ((x for x in range(3)), ["map-style dataset", "generator"]),
])
def test_bad_datasets_fail_before_training(tmp_path, items, words):
    model = tiny_bert()
    before = weights(model)
    with pytest.raises(InputError) as e:
        Trainer(model, args_for(tmp_path, max_steps=2), train_dataset=items, data_collator=PADDING).train()
    for w in words:
        assert w in str(e.value)
    assert weights_equal(before, weights(model)) and not (tmp_path / "out").exists()


def test_token_labels_out_of_range(tmp_path):
    items = token_items(4, 1)
    items[2]["labels"][1] = 7
    with pytest.raises(InputError, match=r"train_dataset\[2\] has label 7 outside the model's 3 classes"):
        Trainer(tiny_bert("BertForTokenClassification"), args_for(tmp_path), train_dataset=items,
                data_collator=TOKENS).train()


def test_output_dir_that_became_a_file_and_missing_eval_set(tmp_path):
    args = args_for(tmp_path, max_steps=1)
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(InputError, match="output_dir=.*out' is a file"):
        Trainer(tiny_bert(), args, train_dataset=topic_items(4, 1), data_collator=PADDING).train()
    args = args_for(tmp_path / "b", max_steps=1, eval_strategy="steps", eval_steps=1)
    with pytest.raises(InputError, match="eval_strategy='steps' needs an eval_dataset"):
        Trainer(tiny_bert(), args, train_dataset=topic_items(4, 1), data_collator=PADDING).train()
    with pytest.raises(InputError, match="evaluation needs a dataset"):
        Trainer(tiny_bert(), args).evaluate()


def test_processing_class_pads_by_default_and_is_saved(tmp_path):
    from tests.helpers import minilm_dir

    tokenizer = loom.AutoTokenizer.from_pretrained(minilm_dir())
    model = tiny_bert(vocab_size=tokenizer.vocab_size, hidden_size=16, intermediate_size=16)
    texts = ["a cat", "the dog barks loudly", "birds", "a horse runs in the field"]
    items = [{**tokenizer(t), "label": i % 3, "text": t} for i, t in enumerate(texts)]
    args = args_for(tmp_path, max_steps=2, per_device_train_batch_size=2, save_strategy="steps", save_steps=2)
    trainer = Trainer(model, args, train_dataset=items, processing_class=tokenizer)  # no collator given
    assert isinstance(trainer.data_collator, DataCollatorWithPadding)
    trainer.train()
    folder = trainer.save_model(str(tmp_path / "final"))
    for where in (tmp_path / "out" / "checkpoint-2", folder):
        assert (where / "tokenizer.json").is_file() and (where / "model.safetensors").is_file()
        again = loom.AutoTokenizer.from_pretrained(where)
        assert again("the dog barks")["input_ids"] == tokenizer("the dog barks")["input_ids"]
    assert json.loads((folder / "training_args.json").read_text())["max_steps"] == 2
    assert weights_equal(weights(model), weights(loom.BertForSequenceClassification.from_pretrained(folder)))


def test_progress_bar_on_stderr(tmp_path, capsys):
    args = args_for(tmp_path, max_steps=3, per_device_train_batch_size=4, disable_tqdm=False)
    Trainer(tiny_bert(), args, train_dataset=topic_items(12, 1), data_collator=PADDING).train()
    err = capsys.readouterr().err
    assert "train" in err and "3/3" in err
