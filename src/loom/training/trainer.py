"""`Trainer`: fine-tune or pretrain a loom model on one process or many, resume exactly.

One optimizer step reads a window of `gradient_accumulation_steps` micro-batches and
weights each micro-batch's mean loss by its share of the window's label count (tokens whose
label is not -100 for token-level losses, shifted by one for causal LMs; examples
otherwise), counted over all ranks. The summed gradients are then those of one big batch
of the whole window, however the labels are spread between micro-batches.

A checkpoint holds everything the next step depends on (weights, optimizer, schedule, the
RNGs of every rank, the data position), and the data order is a pure function of (seed,
epoch): `train(resume_from_checkpoint=...)` continues from the exact batch, without
replaying the loader, and ends with the weights of the run that was never stopped.

Seq2SeqTrainer (`predict_with_generate`) is not here yet: it waits for the seq2seq models.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..io import read_json
from . import checkpoint as ckpt
from . import distributed
from .args import TrainingArguments
from .callbacks import CURVES_FILE, CallbackHandler, TrainerControl, TrainerState, default_callbacks, plot_curves
from .data import IGNORE_INDEX, DataCollatorWithPadding, default_data_collator
from .evaluation import LABEL_KEYS, Accumulator, EvalPrediction, PredictionOutput, assemble, predictions_of
from .loader import (BatchSampler, ColumnFilter, EpochPlan, check_label_range, class_count, check_dataset,
                     epoch_order, make_loader, prepare_dataset, rank_indices, seeded)
from .optim import create_optimizer, create_scheduler

logger = logging.getLogger(__name__)


@dataclass
class TrainOutput:
    global_step: int
    training_loss: float
    metrics: dict[str, float]


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (every device) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def label_shift(model) -> int:
    """1 for causal LMs (token t predicts t+1: the first label is never scored), else 0.

    Read from the task table of the model's package ("causal-lm" -> class name)."""
    for cls in type(model).__mro__:
        package = sys.modules.get(cls.__module__.rpartition(".")[0])
        if getattr(package, "TASKS", {}).get("causal-lm") == cls.__name__:
            return 1
    return 0


def label_count(batch: dict, shift: int) -> int:
    """Label tokens (not -100) of a token-level batch, else its number of examples."""
    labels = batch.get("labels")
    if isinstance(labels, torch.Tensor) and not labels.is_floating_point() and labels.dim() >= 2:
        return int((labels[..., shift:] != IGNORE_INDEX).sum())
    first = next((v for v in batch.values() if isinstance(v, torch.Tensor) and v.dim()), None)
    return int(first.shape[0]) if first is not None else 1


class Trainer:
    def __init__(self, model=None, args: TrainingArguments | None = None, train_dataset=None,
                 eval_dataset=None, data_collator=None, processing_class=None, compute_metrics=None,
                 callbacks=None, optimizers=(None, None), preprocess_logits_for_metrics=None):
        if model is None or not isinstance(model, torch.nn.Module):
            raise InputError(f"Trainer needs a model (a torch module), found {type(model).__name__}")
        self.args = TrainingArguments() if args is None else args
        if not isinstance(self.args, TrainingArguments):
            raise InputError(f"args must be a TrainingArguments, found {type(self.args).__name__}")
        args = self.args
        self.dist = distributed.setup(args)
        set_seed(args.seed)
        self.model = model.to(self.dist.device)
        self.model_wrapped = self.model
        self.processing_class = processing_class
        self.data_collator = data_collator or self._default_collator()
        self.train_dataset = prepare_dataset(train_dataset, model, args.remove_unused_columns, "train_dataset")
        self.eval_dataset = prepare_dataset(eval_dataset, model, args.remove_unused_columns, "eval_dataset")
        self.compute_metrics = compute_metrics
        self.preprocess_logits_for_metrics = preprocess_logits_for_metrics
        self.optimizer, self.lr_scheduler = optimizers
        if self.optimizer is None and self.lr_scheduler is not None:
            raise InputError("optimizers=(None, scheduler): pass the optimizer the scheduler drives too")
        if self.dist.fsdp and self.optimizer is not None:
            raise InputError("fsdp=True builds the optimizer after sharding: pass optimizers=(None, None)")
        self.column_filter = ColumnFilter(model, args.remove_unused_columns)
        self.label_shift = label_shift(model)
        self.state = TrainerState(is_world_process_zero=self.dist.is_main, world_size=self.dist.world_size)
        self.control = TrainerControl()
        self.callback_handler = CallbackHandler(default_callbacks(args) + list(callbacks or []),
                                                self.dist.is_main)
        self._wrapped = False
        self.control = self._call("on_init_end")

    # -- small helpers ----------------------------------------------------------------------

    def _default_collator(self):
        if getattr(self.processing_class, "pad_token_id", None) is not None:
            return DataCollatorWithPadding(self.processing_class)
        return default_data_collator

    def _call(self, event: str, **kwargs) -> TrainerControl:
        return self.callback_handler.call(event, self.args, self.state, self.control, model=self.model,
                                          optimizer=self.optimizer, lr_scheduler=self.lr_scheduler, **kwargs)

    def add_callback(self, callback) -> None:
        self.callback_handler.add(callback)

    def pop_callback(self, kind: type):
        return self.callback_handler.pop(kind)

    def _to_device(self, batch: dict) -> dict:
        device = self.dist.device
        return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _autocast(self):
        return torch.autocast(self.dist.device.type, dtype=torch.bfloat16, enabled=self.args.bf16)

    def _loader(self, dataset, batch_size: int, indices: list[int], epoch: int, start: int, drop_last: bool):
        sampler = BatchSampler(indices, batch_size, drop_last, self.args.seed, epoch, self.dist.rank, start)
        return make_loader(dataset, self.data_collator, self.column_filter, sampler,
                           self.args.dataloader_num_workers, pin_memory=self.dist.device.type == "cuda")

    def _check_output_dir(self) -> None:
        out = Path(self.args.output_dir)
        if out.exists() and not out.is_dir():
            raise InputError(f"output_dir={self.args.output_dir!r} is a file; it must be a folder (or not exist)")

    def _check_collation(self, dataset, what: str, need_labels: bool) -> None:
        """Collate the first items once: a collator that cannot batch them, or batches with
        no labels to train on, fail now rather than at the first step."""
        items = [self.column_filter(dataset[i]) for i in range(min(2, len(dataset)))]
        with seeded(self.args.seed):
            try:
                batch = self.data_collator(items)
            except InputError as e:
                raise InputError(f"{what}: the data collator cannot batch the first items: {e}") from None
        if not isinstance(batch, dict):
            raise InputError(f"{what}: the data collator must return a dict of tensors, found {type(batch).__name__}")
        if need_labels and not any(k in batch for k in LABEL_KEYS):
            raise InputError(f"{what}[0] has no 'labels' (or 'label'), and the data collator adds none: found "
                             f"keys {sorted(items[0])}; the model needs labels to compute the training loss")
        check_label_range(batch.get("labels"), class_count(self.model), f"{what} (a collated batch)")

    # -- training ---------------------------------------------------------------------------

    def train(self, resume_from_checkpoint: str | bool | None = None) -> TrainOutput:
        """Train for `max_steps` (or `num_train_epochs`); resume from a checkpoint folder, or
        from the last one in output_dir with `resume_from_checkpoint=True`."""
        args = self.args
        if resume_from_checkpoint is None:
            resume_from_checkpoint = args.resume_from_checkpoint
        self._check_before_training()
        folder = ckpt.resolve_resume(resume_from_checkpoint, args.output_dir)
        plan = EpochPlan(len(self.train_dataset), args.per_device_train_batch_size, self.dist.world_size,
                         args.gradient_accumulation_steps, args.dataloader_drop_last)
        if plan.batches == 0:
            raise InputError(f"train_dataset has {plan.dataset_size} items: fewer than one batch of "
                             f"{plan.batch_size} per rank with dataloader_drop_last=True")
        max_steps = args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * plan.steps)
        self._setup_model_and_optimizer(max_steps)
        self.state = TrainerState(
            max_steps=max_steps, num_train_epochs=math.ceil(max_steps / plan.steps),
            logging_steps=args.logging_steps, eval_steps=args.eval_steps, save_steps=args.save_steps,
            train_batch_size=args.per_device_train_batch_size, is_world_process_zero=self.dist.is_main,
            world_size=self.dist.world_size)
        rng = self._load_checkpoint(folder) if folder is not None else None
        self._train_loss = [torch.zeros((), dtype=torch.float64), 0]  # since the last log
        self._run_loss = [0.0, 0]  # of this train() call
        self._last_eval_step = self._last_save_step = -1
        self.control = TrainerControl()
        self.control = self._call("on_train_begin")
        start, first_step = time.perf_counter(), self.state.global_step
        if rng is not None:
            ckpt.set_rng_state(rng)  # last, so nothing above draws from the restored generators
        self._train_loop(plan)
        return self._finish_training(time.perf_counter() - start, self.state.global_step - first_step)

    def _check_before_training(self) -> None:
        self._check_output_dir()
        if self.train_dataset is None:
            raise InputError("train() needs a train_dataset")
        check_dataset(self.train_dataset, self.model, "train_dataset")
        self._check_collation(self.train_dataset, "train_dataset", need_labels=True)
        if self.args.eval_strategy != "no":
            if self.eval_dataset is None:
                raise InputError(f"eval_strategy={self.args.eval_strategy!r} needs an eval_dataset")
            check_dataset(self.eval_dataset, self.model, "eval_dataset")

    def _setup_model_and_optimizer(self, max_steps: int) -> None:
        if not self._wrapped:  # FSDP replaces the parameters: the optimizer comes after
            self.model_wrapped = distributed.wrap(self.model, self.dist, self.args)
            self._wrapped = True
        if self.optimizer is None:
            self.optimizer = create_optimizer(self.model, self.args, sharded=self.dist.fsdp)
        if self.lr_scheduler is None:
            self.lr_scheduler = create_scheduler(self.optimizer, self.args, max_steps)

    def _train_loop(self, plan: EpochPlan) -> None:
        st, accumulation = self.state, self.args.gradient_accumulation_steps
        epoch, skip = st.data_epoch, st.data_batch
        if skip >= plan.batches:  # saved after an epoch's last batch
            epoch, skip = epoch + 1, 0
        for epoch in range(epoch, st.num_train_epochs):
            if st.global_step >= st.max_steps or self.control.should_training_stop:
                break
            self.control.should_epoch_stop = False
            self.control = self._call("on_epoch_begin")
            order = rank_indices(epoch_order(plan.dataset_size, self.args.seed, epoch), self.dist.rank,
                                 self.dist.world_size, pad=True)
            batches = iter(self._loader(self.train_dataset, plan.batch_size, order, epoch, skip,
                                        self.args.dataloader_drop_last))
            position = skip
            while position < plan.batches and st.global_step < st.max_steps:
                window = list(itertools.islice(batches, min(accumulation, plan.batches - position)))
                position += len(window)
                self.control = self._call("on_step_begin")
                self._optimizer_step([b for _, b in window])
                st.global_step += 1
                st.epoch = epoch + position / plan.batches
                st.data_epoch, st.data_batch = epoch, position
                self.control = self._call("on_step_end")
                self._maybe_log_save_evaluate(epoch_end=False)
                if self.control.should_training_stop or self.control.should_epoch_stop:
                    break
            skip = 0
            self.control = self._call("on_epoch_end")
            self._maybe_log_save_evaluate(epoch_end=True)

    def _optimizer_step(self, window: list[dict]) -> None:
        """Forward and backward every micro-batch of the window, then one optimizer step."""
        model, world = self.model_wrapped, self.dist.world_size
        model.train()
        counts = [label_count(b, self.label_shift) for b in window]
        total = float(distributed.all_reduce_sum(torch.tensor(float(sum(counts)), dtype=torch.float64,
                                                              device=self.dist.device), self.dist))
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.dist.device)
        for i, (batch, count) in enumerate(zip(window, counts)):
            with distributed.sync_gradients(model, self.dist, i == len(window) - 1), self._autocast():
                output = model(**self._to_device(batch))
                loss = self._loss_of(output, count)
            # Mean over this micro-batch times its share of the window (times world: DDP averages).
            (loss * (count * world / max(total, 1.0))).backward()
            loss_sum += loss.detach().double() * count
        self._grad_norm = self._clip_gradients()
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._train_loss[0] += loss_sum.cpu()
        self._train_loss[1] += sum(counts)

    def _loss_of(self, output, count: int) -> torch.Tensor:
        loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
        if loss is None:
            raise InputError(f"{type(self.model).__name__} returned no loss: training batches need "
                             "'labels' (check the dataset columns and the data collator)")
        if count == 0:  # no label in this micro-batch: its mean is NaN; it adds nothing
            return predictions_of(output)[0].sum() * 0.0
        return loss

    def _clip_gradients(self) -> float | None:
        if self.args.max_grad_norm <= 0:
            return None
        norm = torch.nn.utils.clip_grad_norm_(self.model_wrapped.parameters(), self.args.max_grad_norm)
        if hasattr(norm, "full_tensor"):  # a DTensor under FSDP
            norm = norm.full_tensor()
        return float(norm)

    def _maybe_log_save_evaluate(self, epoch_end: bool) -> None:
        st, args, c = self.state, self.args, self.control
        if not epoch_end:
            step = st.global_step
            c.should_log |= step % args.logging_steps == 0 or (args.logging_first_step and step == 1)
            c.should_evaluate |= args.eval_strategy == "steps" and step % args.eval_steps == 0
            c.should_save |= args.save_strategy == "steps" and step % args.save_steps == 0
            if step >= st.max_steps:
                c.should_training_stop = True
                c.should_save |= args.save_strategy == "steps"
        else:
            c.should_evaluate |= args.eval_strategy == "epoch"
            c.should_save |= args.save_strategy == "epoch"
        if c.should_log:
            c.should_log = False
            self._log_training()
        metrics = None
        if c.should_evaluate:
            c.should_evaluate = False
            if self._last_eval_step != st.global_step:
                metrics = self.evaluate()
        if c.should_save:
            c.should_save = False
            if self._last_save_step != st.global_step:
                self._save_checkpoint(metrics)

    def _log_training(self) -> None:
        loss_sum, count = self._train_loss
        total = distributed.all_reduce_sum(torch.stack([loss_sum, torch.tensor(float(count), dtype=torch.float64)])
                                           .to(self.dist.device), self.dist).cpu()
        if total[1] == 0:
            return
        self._run_loss[0] += float(total[0])
        self._run_loss[1] += int(total[1])
        logs = {"loss": round(float(total[0] / total[1]), 6), "learning_rate": self.lr_scheduler.get_last_lr()[0]}
        if self._grad_norm is not None:
            logs["grad_norm"] = round(self._grad_norm, 6)
        self._train_loss = [torch.zeros((), dtype=torch.float64), 0]
        self.log(logs)

    def log(self, logs: dict[str, float]) -> None:
        """Record `logs` (with epoch and step) in the history and pass them to the callbacks."""
        logs = {**logs, "epoch": round(self.state.epoch, 4)}
        self.state.log_history.append({**logs, "step": self.state.global_step})
        self.control = self._call("on_log", logs=logs)

    def _finish_training(self, runtime: float, steps: int) -> TrainOutput:
        st, args = self.state, self.args
        if self._train_loss[1]:
            self._log_training()
        if args.load_best_model_at_end and st.best_model_checkpoint and Path(st.best_model_checkpoint).is_dir():
            logger.info("loading the best model (%s=%s) from %s", args.metric_for_best_model,
                        st.best_metric, st.best_model_checkpoint)
            self._load_weights(Path(st.best_model_checkpoint))
        train_loss = self._run_loss[0] / self._run_loss[1] if self._run_loss[1] else float("nan")
        samples = steps * args.per_device_train_batch_size * args.gradient_accumulation_steps * self.dist.world_size
        metrics = {"train_runtime": round(runtime, 4), "train_loss": train_loss,
                   "train_steps_per_second": round(steps / runtime, 3) if runtime else 0.0,
                   "train_samples_per_second": round(samples / runtime, 3) if runtime else 0.0}
        self.log(metrics)
        self.control = self._call("on_train_end")
        if self.dist.is_main:
            Path(args.output_dir).mkdir(parents=True, exist_ok=True)
            plot_curves(st.log_history, Path(args.output_dir) / CURVES_FILE, args.metric_for_best_model)
        return TrainOutput(st.global_step, train_loss, metrics)

    # -- checkpoints ------------------------------------------------------------------------

    def _save_checkpoint(self, metrics: dict | None) -> Path:
        st, args = self.state, self.args
        folder = ckpt.checkpoint_dir(args.output_dir, st.global_step)
        if metrics is not None and args.metric_for_best_model is not None:
            self._update_best(metrics, folder)
        full = distributed.full_model_state(self.model_wrapped, self.dist)
        optimizer = distributed.optimizer_state(self.model_wrapped, self.optimizer, self.dist)
        rngs = distributed.gather_objects(ckpt.rng_state(), self.dist)
        if self.dist.is_main:
            self._check_output_dir()
            ckpt.save_checkpoint(folder, model=self.model, full_state=full, optimizer_state=optimizer,
                                 scheduler_state=self.lr_scheduler.state_dict(), rng_states=rngs,
                                 trainer_state=st.to_dict(), args=args, processing_class=self.processing_class)
            keep = st.best_model_checkpoint if args.load_best_model_at_end else None
            ckpt.rotate(args.output_dir, args.save_total_limit, keep)
        distributed.barrier(self.dist)
        self._last_save_step = st.global_step
        self.control = self._call("on_save", checkpoint=folder)
        return folder

    def _update_best(self, metrics: dict, folder: Path) -> None:
        st, args = self.state, self.args
        key = f"eval_{args.metric_for_best_model}"
        if key not in metrics:
            raise ConfigError(f"metric_for_best_model={args.metric_for_best_model!r}: {key!r} is not among "
                              f"the evaluation metrics {sorted(metrics)}")
        value = float(metrics[key])
        better = st.best_metric is None or (value > st.best_metric if args.greater_is_better else value < st.best_metric)
        if better:
            st.best_metric, st.best_model_checkpoint, st.best_global_step = value, str(folder), st.global_step

    def _load_weights(self, folder: Path) -> None:
        hook = None
        if self.dist.fsdp:
            def hook(state):
                distributed.load_full_model_state(self.model_wrapped, state, self.dist)
        ckpt.load_model_weights(self.model, folder, hook)

    def _load_checkpoint(self, folder: Path) -> dict:
        """Restore weights, optimizer, schedule and position; return this rank's RNG state."""
        saved = ckpt.load_trainer_state(folder)
        before = read_json(folder / ckpt.ARGS_FILE, what="training arguments")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "seed", "dataloader_drop_last"):
            if before.get(name) != getattr(self.args, name):
                raise ConfigError(f"cannot resume from {folder} exactly: it was trained with {name}="
                                  f"{before.get(name)!r}, these arguments say {getattr(self.args, name)!r}")
        if saved.get("world_size", 1) != self.dist.world_size:
            raise ConfigError(f"cannot resume from {folder} exactly: it was written by {saved.get('world_size')} "
                              f"processes, this run has {self.dist.world_size}")
        self._load_weights(folder)
        distributed.load_optimizer_state(self.model_wrapped, self.optimizer,
                                         ckpt.load_tensors(folder / ckpt.OPTIMIZER_FILE, "optimizer state"), self.dist)
        self.lr_scheduler.load_state_dict(ckpt.load_tensors(folder / ckpt.SCHEDULER_FILE, "scheduler state"))
        kept = {k: getattr(self.state, k) for k in ("max_steps", "num_train_epochs", "logging_steps",
                                                      "eval_steps", "save_steps", "is_world_process_zero")}
        self.state = TrainerState.from_dict({**saved, **kept})
        logger.info("resuming from %s at step %d (epoch %d, batch %d)", folder, self.state.global_step,
                    self.state.data_epoch, self.state.data_batch)
        return ckpt.load_tensors(folder / f"rng_state_{self.dist.rank}.pth", f"RNG state of rank {self.dist.rank}")

    def save_model(self, output_dir: str | None = None) -> Path:
        """Write the model (and the tokenizer, if any) for `from_pretrained`; rank 0 writes."""
        folder = Path(output_dir or self.args.output_dir)
        if folder.exists() and not folder.is_dir():
            raise InputError(f"save_model: {folder} is a file; it must be a folder (or not exist)")
        full = distributed.full_model_state(self.model_wrapped, self.dist)
        if self.dist.is_main:
            ckpt.save_model_files(self.model, folder, full)
            if self.processing_class is not None and hasattr(self.processing_class, "save_pretrained"):
                self.processing_class.save_pretrained(folder)
            (folder / ckpt.ARGS_FILE).write_text(self.args.to_json_string(), encoding="utf-8")
        distributed.barrier(self.dist)
        return folder

    # -- evaluation and prediction ----------------------------------------------------------

    def evaluate(self, eval_dataset=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Loss (and `compute_metrics`) over the evaluation set; logged and returned."""
        dataset = self._eval_set(eval_dataset, "eval_dataset")
        keep = self.compute_metrics is not None
        metrics, _, _ = self._evaluation_loop(dataset, metric_key_prefix, keep)
        self.log(metrics)
        self._last_eval_step = self.state.global_step
        self.control = self._call("on_evaluate", metrics=metrics)
        return metrics

    def predict(self, test_dataset, metric_key_prefix: str = "test") -> PredictionOutput:
        """Predictions (NumPy, in dataset order), labels if the set has them, and metrics."""
        dataset = self._eval_set(test_dataset, "test_dataset")
        metrics, predictions, labels = self._evaluation_loop(dataset, metric_key_prefix, keep=True)
        self.control = self._call("on_predict", metrics=metrics)
        return PredictionOutput(predictions, labels, metrics)

    def _eval_set(self, dataset, what: str):
        if dataset is None:
            dataset = self.eval_dataset
            what = "eval_dataset"
        else:
            dataset = prepare_dataset(dataset, self.model, self.args.remove_unused_columns, what)
        if dataset is None:
            raise InputError(f"evaluation needs a dataset: pass {what}= here or eval_dataset= to the Trainer")
        check_dataset(dataset, self.model, what)
        return dataset

    def _evaluation_loop(self, dataset, prefix: str, keep: bool):
        start = time.perf_counter()
        model = self.model_wrapped if self.dist.fsdp else self.model  # DDP: no collectives needed
        was_training = model.training
        model.eval()
        acc, bs = Accumulator(keep), self.args.per_device_eval_batch_size
        indices = rank_indices(list(range(len(dataset))), self.dist.rank, self.dist.world_size, pad=False)
        loader = self._loader(dataset, bs, indices, epoch=-1, start=0, drop_last=False)
        with torch.no_grad():
            for batch_indices, batch in loader:
                count = label_count(batch, self.label_shift)
                with self._autocast():
                    output = model(**self._to_device(batch))
                preds = predictions_of(output)
                labels = tuple(batch[k] for k in LABEL_KEYS if k in batch)
                if keep and self.preprocess_logits_for_metrics is not None:
                    preds = self.preprocess_logits_for_metrics(preds[0] if len(preds) == 1 else preds,
                                                               labels[0] if len(labels) == 1 else labels)
                    preds = preds if isinstance(preds, tuple) else (preds,)
                acc.add(batch_indices, getattr(output, "loss", None), count, preds, labels)
            self._pad_sharded_forwards(model, loader, len(dataset), bs)
        model.train(was_training)
        return self._eval_metrics(acc, prefix, len(dataset), time.perf_counter() - start)

    def _pad_sharded_forwards(self, model, loader, n: int, bs: int) -> None:
        """FSDP ranks gather weights together: a rank with fewer eval batches runs extra ones."""
        if not self.dist.fsdp:
            return
        most = math.ceil(math.ceil(n / self.dist.world_size) / bs)
        extra = most - len(loader)
        if extra > 0:
            _, batch = next(iter(loader)) if len(loader) else (None, None)
            for _ in range(extra):
                model(**self._to_device(batch))

    def _eval_metrics(self, acc: Accumulator, prefix: str, n: int, runtime: float):
        sums = distributed.all_reduce_sum(torch.tensor([acc.loss_sum, float(acc.count)], dtype=torch.float64,
                                                       device=self.dist.device), self.dist).cpu()
        metrics: dict[str, float] = {}
        if sums[1] > 0:
            metrics[f"{prefix}_loss"] = float(sums[0] / sums[1])
        predictions = labels = None
        if acc.keep:
            predictions, labels = assemble(distributed.gather_objects(acc.part(), self.dist))
            if self.compute_metrics is not None and labels is not None:
                computed = self.compute_metrics(EvalPrediction(predictions, labels))
                metrics.update({k if k.startswith(f"{prefix}_") else f"{prefix}_{k}": v for k, v in computed.items()})
        metrics[f"{prefix}_runtime"] = round(runtime, 4)
        metrics[f"{prefix}_samples_per_second"] = round(n / runtime, 3) if runtime else 0.0
        return metrics, predictions, labels


__all__ = ["Trainer", "TrainOutput", "EvalPrediction", "PredictionOutput", "set_seed"]
