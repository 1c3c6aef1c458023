"""Training: `Trainer`, `TrainingArguments`, collators and callbacks.

    args = TrainingArguments(output_dir="out", num_train_epochs=3, eval_strategy="epoch")
    trainer = Trainer(model, args, train_dataset=train, eval_dataset=dev,
                      processing_class=tokenizer, compute_metrics=accuracy)
    trainer.train()                              # or train(resume_from_checkpoint=True)

Run the same script under `torchrun --nproc_per_node=N` to train on N processes.
Names load on first use: `TrainingArguments` needs no torch.
"""

import importlib

_LAZY = {
    "TrainingArguments": "args",
    **{name: "trainer" for name in ("Trainer", "TrainOutput", "set_seed", "label_count")},
    **{name: "evaluation" for name in ("EvalPrediction", "PredictionOutput")},
    **{name: "data" for name in (
        "DataCollatorWithPadding", "DataCollatorForLanguageModeling",
        "DataCollatorForTokenClassification", "DataCollatorForSeq2Seq", "default_data_collator",
    )},
    **{name: "callbacks" for name in (
        "TrainerCallback", "TrainerState", "TrainerControl", "ProgressCallback", "JSONLinesCallback",
        "EarlyStoppingCallback", "TensorBoardCallback", "plot_curves",
    )},
    **{name: "optim" for name in ("get_scheduler", "create_optimizer")},
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
