"""Callbacks: a small protocol the loop calls at its events, and the built-in ones.

A callback subclasses `TrainerCallback` and overrides any of `on_init_end`,
`on_train_begin`, `on_epoch_begin`, `on_step_begin`, `on_step_end`, `on_epoch_end`,
`on_log`, `on_evaluate`, `on_predict`, `on_save`, `on_train_end`. Each is called as
`cb.on_x(args, state, control, **info)` and may set flags on `control`
(`should_training_stop`, `should_evaluate`, `should_save`, `should_log`).

Built in: `ProgressCallback` (tqdm), `JSONLinesCallback` (`log.jsonl` in output_dir),
`EarlyStoppingCallback`, `TensorBoardCallback`. Writers run on rank 0 only. At the end of
training `plot_curves` draws the loss (and eval metric) curves to `training_curves.png`
when matplotlib is installed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

logger = logging.getLogger(__name__)

LOG_FILE = "log.jsonl"
CURVES_FILE = "training_curves.png"


@dataclass
class TrainerState:
    """Where training is; saved as `trainer_state.json` in every checkpoint."""
    epoch: float = 0.0
    global_step: int = 0
    max_steps: int = 0
    num_train_epochs: int = 0
    logging_steps: int = 500
    eval_steps: int | None = None
    save_steps: int = 500
    train_batch_size: int = 0
    # The next batch to read: (epoch, batch index within that epoch) of this rank's shard.
    data_epoch: int = 0
    data_batch: int = 0
    total_flos: float = 0.0
    log_history: list[dict[str, Any]] = field(default_factory=list)
    best_metric: float | None = None
    best_model_checkpoint: str | None = None
    best_global_step: int | None = None
    is_world_process_zero: bool = True
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainerState:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class TrainerControl:
    """Flags the loop reads after each event; callbacks set them."""
    should_training_stop: bool = False
    should_epoch_stop: bool = False
    should_save: bool = False
    should_evaluate: bool = False
    should_log: bool = False


class TrainerCallback:
    """Base of callbacks: every event is a no-op until overridden."""

    def on_init_end(self, args, state, control, **kwargs): pass
    def on_train_begin(self, args, state, control, **kwargs): pass
    def on_train_end(self, args, state, control, **kwargs): pass
    def on_epoch_begin(self, args, state, control, **kwargs): pass
    def on_epoch_end(self, args, state, control, **kwargs): pass
    def on_step_begin(self, args, state, control, **kwargs): pass
    def on_step_end(self, args, state, control, **kwargs): pass
    def on_log(self, args, state, control, logs=None, **kwargs): pass
    def on_evaluate(self, args, state, control, metrics=None, **kwargs): pass
    def on_predict(self, args, state, control, metrics=None, **kwargs): pass
    def on_save(self, args, state, control, **kwargs): pass


EVENTS = [name for name in vars(TrainerCallback) if name.startswith("on_")]


class CallbackHandler:
    """Calls every callback at an event, in order; returns the shared control."""

    def __init__(self, callbacks, main_process: bool):
        self.callbacks: list[TrainerCallback] = []
        self.main_process = main_process
        for cb in callbacks:
            self.add(cb)

    def add(self, callback) -> None:
        cb = callback() if isinstance(callback, type) else callback
        if not any(callable(getattr(cb, e, None)) for e in EVENTS):
            raise ConfigError(f"callback {type(cb).__name__} has none of the events {EVENTS}")
        if getattr(cb, "main_process_only", False) and not self.main_process:
            return
        self.callbacks.append(cb)

    def pop(self, kind: type) -> TrainerCallback | None:
        for cb in self.callbacks:
            if isinstance(cb, kind):
                self.callbacks.remove(cb)
                return cb
        return None

    def call(self, event: str, args, state, control, **kwargs) -> TrainerControl:
        for cb in self.callbacks:
            method = getattr(cb, event, None)
            if method is None:
                continue
            result = method(args, state, control, **kwargs)
            if isinstance(result, TrainerControl):
                control = result
        return control


class ProgressCallback(TrainerCallback):
    """A tqdm bar over optimizer steps, and one over evaluation batches."""
    main_process_only = True

    def __init__(self):
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train",
                        dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class JSONLinesCallback(TrainerCallback):
    """Appends every log and evaluation, one JSON object a line, to output_dir/log.jsonl.

    A resumed run first drops the lines past its checkpoint's step (written by the run that
    stopped), so the file reads as one run."""
    main_process_only = True

    def on_train_begin(self, args, state, control, **kwargs):
        path = Path(args.output_dir) / LOG_FILE
        if state.global_step == 0 or not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [x for x in lines if x.strip() and json.loads(x).get("step", 0) <= state.global_step]
        if len(kept) != len(lines):
            path.write_text("".join(x + "\n" for x in kept), encoding="utf-8")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        path = Path(args.output_dir) / LOG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({**logs, "step": state.global_step}, sort_keys=True) + "\n")


class TensorBoardCallback(TrainerCallback):
    """Scalars of every log to output_dir/runs (needs the `tensorboard` package)."""
    main_process_only = True

    def __init__(self, log_dir: str | None = None):
        self.log_dir, self.writer = log_dir, None

    def on_train_begin(self, args, state, control, **kwargs):
        from torch.utils.tensorboard import SummaryWriter

        if self.writer is None:
            # purge_step: a resumed run replaces the events the stopped run wrote past its checkpoint.
            self.writer = SummaryWriter(log_dir=self.log_dir or str(Path(args.output_dir) / "runs"),
                                        purge_step=state.global_step or None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.writer is None or not logs:
            return
        for key, value in logs.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(key if "/" in key else f"train/{key}", value, state.global_step)
        self.writer.flush()

    def on_train_end(self, args, state, control, **kwargs):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class EarlyStoppingCallback(TrainerCallback):
    """Stop when `metric_for_best_model` has not improved by more than `threshold` for
    `patience` evaluations in a row."""

    def __init__(self, early_stopping_patience: int = 1, early_stopping_threshold: float = 0.0):
        if early_stopping_patience < 1:
            raise ConfigError(f"early_stopping_patience must be >= 1, found {early_stopping_patience}")
        self.patience, self.threshold = early_stopping_patience, early_stopping_threshold
        self.best: float | None = None
        self.bad_evaluations = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if args.metric_for_best_model is None:
            raise ConfigError("EarlyStoppingCallback needs metric_for_best_model in TrainingArguments")
        if args.eval_strategy == "no":
            raise ConfigError("EarlyStoppingCallback needs evaluations: set eval_strategy")

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        key = f"eval_{args.metric_for_best_model}"
        if not metrics or key not in metrics:
            logger.warning("early stopping: metric %r not in the evaluation results %s", key, sorted(metrics or {}))
            return
        value = metrics[key]
        better = self.best is None or (
            value > self.best + self.threshold if args.greater_is_better else value < self.best - self.threshold)
        if better:
            self.best, self.bad_evaluations = value, 0
        else:
            self.bad_evaluations += 1
        if self.bad_evaluations >= self.patience:
            control.should_training_stop = True


def default_callbacks(args) -> list[TrainerCallback]:
    callbacks: list[TrainerCallback] = [JSONLinesCallback()]
    if not args.disable_tqdm:
        callbacks.append(ProgressCallback())
    if "tensorboard" in args.report_to:
        callbacks.append(TensorBoardCallback())
    return callbacks


def plot_curves(log_history: list[dict], path: str | Path, metric: str | None = None) -> Path | None:
    """Draw training loss and eval loss (and `metric`) against steps; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed: no %s", CURVES_FILE)
        return None
    series = {"train loss": _series(log_history, "loss"), "eval loss": _series(log_history, "eval_loss")}
    if metric and metric != "loss":
        series[f"eval {metric}"] = _series(log_history, f"eval_{metric}")
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.5), squeeze=False)
    for ax, (name, points) in zip(axes[0], series.items()):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 50 else None)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _series(history: list[dict], key: str) -> list[tuple[int, float]]:
    return [(h["step"], h[key]) for h in history
            if key in h and "step" in h and isinstance(h[key], (int, float)) and math.isfinite(h[key])]


__all__ = [
    "TrainerState", "TrainerControl", "TrainerCallback", "ProgressCallback", "JSONLinesCallback",
    "TensorBoardCallback", "EarlyStoppingCallback", "plot_curves",
]
