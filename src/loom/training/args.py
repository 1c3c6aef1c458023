"""`TrainingArguments`: every knob of the training loop, checked when it is built.

The field names are the ones `transformers.TrainingArguments` users know. Combinations that
cannot work (keeping the best model without evaluating at the save points, a warmup ratio
above 1, a reporter that is not installed, an `output_dir` that is a file) raise a
`ConfigError` naming the argument here, not hours into a run. No torch import.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

STRATEGIES = ("no", "steps", "epoch")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
REPORTERS = ("tensorboard",)


@dataclass(kw_only=True)
class TrainingArguments:
    output_dir: str = "trainer_output"
    # -- length of the run
    num_train_epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides num_train_epochs
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    # -- optimizer (AdamW) and schedule
    learning_rate: float = 5e-5
    weight_decay: float = 0.0  # applied to 2-D weights only (no biases, no norms)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0  # 0 or less: no clipping
    lr_scheduler_type: str = "linear"
    warmup_steps: int = 0  # wins over warmup_ratio when > 0
    warmup_ratio: float = 0.0
    # -- evaluation, saving, logging
    eval_strategy: str = "no"
    eval_steps: int | None = None  # None: logging_steps
    save_strategy: str = "steps"
    save_steps: int = 500
    save_total_limit: int | None = None
    logging_steps: int = 500
    logging_first_step: bool = False
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = None  # None: "loss" when load_best_model_at_end
    greater_is_better: bool | None = None  # None: False for metrics named *loss, else True
    # -- reproducibility, precision, devices
    seed: int = 42
    bf16: bool = False
    use_cpu: bool = False
    fsdp: bool = False  # shard parameters, grads and optimizer state with FSDP2 (torchrun)
    ddp_backend: str | None = None  # None: nccl on CUDA, gloo on CPU
    ddp_find_unused_parameters: bool = False  # True when some parameters get no gradient
    # -- data
    dataloader_num_workers: int = 0
    dataloader_drop_last: bool = False
    remove_unused_columns: bool = True
    # -- reporting and resuming
    report_to: str | list[str] | None = "none"
    resume_from_checkpoint: str | None = None
    disable_tqdm: bool = False

    def __post_init__(self):
        self.output_dir = str(self.output_dir)
        out = Path(self.output_dir)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"output_dir={self.output_dir!r} exists and is a file, not a folder")
        self._check_numbers()
        self._check_strategies()
        self._check_best_model()
        self.report_to = _reporters(self.report_to)

    def _check_numbers(self) -> None:
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size",
                     "gradient_accumulation_steps", "logging_steps", "save_steps"):
            _positive_int(name, getattr(self, name))
        if self.eval_steps is not None:
            _positive_int("eval_steps", self.eval_steps)
        if not isinstance(self.max_steps, int) or self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"max_steps must be a positive int or -1 (use epochs), found {self.max_steps!r}")
        if self.max_steps < 0 and not self.num_train_epochs > 0:
            raise ConfigError(f"num_train_epochs must be > 0 when max_steps=-1, found {self.num_train_epochs!r}")
        if not 0.0 <= self.warmup_ratio <= 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1], found {self.warmup_ratio!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be an int >= 0, found {self.warmup_steps!r}")
        if self.learning_rate < 0 or self.weight_decay < 0 or self.adam_epsilon < 0:
            raise ConfigError("learning_rate, weight_decay and adam_epsilon must be >= 0, found "
                              f"{self.learning_rate}, {self.weight_decay}, {self.adam_epsilon}")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), found {getattr(self, name)!r}")
        if self.save_total_limit is not None:
            _positive_int("save_total_limit", self.save_total_limit)
        if not isinstance(self.dataloader_num_workers, int) or self.dataloader_num_workers < 0:
            raise ConfigError(f"dataloader_num_workers must be an int >= 0, found {self.dataloader_num_workers!r}")
        if self.lr_scheduler_type not in SCHEDULERS:
            raise ConfigError(f"lr_scheduler_type must be one of {SCHEDULERS}, found {self.lr_scheduler_type!r}")
        if self.ddp_backend not in (None, "gloo", "nccl"):
            raise ConfigError(f"ddp_backend must be None, 'gloo' or 'nccl', found {self.ddp_backend!r}")

    def _check_strategies(self) -> None:
        for name in ("eval_strategy", "save_strategy"):
            value = getattr(self, name)
            if value not in STRATEGIES:
                raise ConfigError(f"{name} must be one of {STRATEGIES}, found {value!r}")
        if self.eval_strategy == "steps" and self.eval_steps is None:
            self.eval_steps = self.logging_steps

    def _check_best_model(self) -> None:
        if self.load_best_model_at_end:
            if self.eval_strategy == "no":
                raise ConfigError("load_best_model_at_end=True needs evaluations: set eval_strategy "
                                  "to 'steps' or 'epoch'")
            if self.save_strategy != self.eval_strategy:
                raise ConfigError(
                    "load_best_model_at_end=True needs save_strategy equal to eval_strategy, found "
                    f"save_strategy={self.save_strategy!r}, eval_strategy={self.eval_strategy!r}")
            if self.save_strategy == "steps" and self.save_steps % self.eval_steps:
                raise ConfigError(
                    "load_best_model_at_end=True needs save_steps to be a multiple of eval_steps "
                    f"(a checkpoint at every evaluated step), found save_steps={self.save_steps}, "
                    f"eval_steps={self.eval_steps}")
            if self.metric_for_best_model is None:
                self.metric_for_best_model = "loss"
        if self.metric_for_best_model is not None:
            self.metric_for_best_model = self.metric_for_best_model.removeprefix("eval_")
            if self.greater_is_better is None:
                self.greater_is_better = not self.metric_for_best_model.endswith("loss")

    # -- derived values ---------------------------------------------------------------------

    def warmup_for(self, total_steps: int) -> int:
        """Warmup steps of a run of `total_steps`: warmup_steps if set, else the ratio's share."""
        if self.warmup_steps > 0:
            return self.warmup_steps
        return math.ceil(self.warmup_ratio * total_steps)

    # -- (de)serialisation ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "arguments") -> TrainingArguments:
        """Build from a mapping, raising a `ConfigError` that names unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown training argument(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def replace(self, **changes) -> TrainingArguments:
        return dataclasses.replace(self, **changes)


def _positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive int, found {value!r}")


def _reporters(report_to) -> list[str]:
    """'none' / None / [] -> []; 'all' -> every installed reporter; names checked as installed."""
    if report_to in (None, "none"):
        return []
    names = [report_to] if isinstance(report_to, str) else list(report_to)
    if "all" in names:
        return [r for r in REPORTERS if _installed(r)]
    for name in names:
        if name not in REPORTERS:
            raise ConfigError(f"report_to: unknown reporter {name!r}; known: {list(REPORTERS)} or 'all'/'none'")
        if not _installed(name):
            raise ConfigError(f"report_to={name!r} needs the {name!r} package: pip install {name}")
    return [n for n in names if n != "none"]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


__all__ = ["TrainingArguments"]
