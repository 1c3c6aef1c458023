"""`Pipeline`: raw inputs -> preprocess -> batched forward -> postprocess -> plain Python.

Every task is a subclass with three short methods:

    preprocess(items, p)          each input's rows (token windows, candidate pairs, images)
    forward(batch, rows, p)       the model on one padded batch of rows -> outputs per row
    postprocess(item, rows, p)    one input's rows, with outputs, -> the task's result

The base does the rest once: input checking (a bad item is named by its index), batching
by `batch_size` with rows sorted by length so that a batch pads little (results come back
in input order), padding, `torch.inference_mode`, moving to the model's device, turning
outputs into float32 NumPy, and streaming over generators and `datasets.Dataset`s.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import InputError

logger = logging.getLogger("loom.pipelines")

# How many inputs of a stream (generator, Dataset) are gathered and length-sorted at a time,
# in units of batch_size: enough to sort well, little enough to yield results early.
STREAM_CHUNK_BATCHES = 8
LONG_INPUTS = ("truncate", "window")


@dataclass
class Row:
    """One sequence the model sees, and what postprocess needs to read its outputs."""

    ids: Sequence[int] = ()
    type_ids: Sequence[int] | None = None
    enc: Any = None   # the `tokenizers.Encoding` of text rows: offsets, words, sequence ids
    data: dict[str, Any] = field(default_factory=dict)   # other inputs and labels
    out: dict[str, Any] = field(default_factory=dict)    # filled by the forward pass

    @classmethod
    def from_encoding(cls, enc, **data) -> Row:
        return cls(ids=enc.ids, type_ids=enc.type_ids, enc=enc, data=data)


class Pipeline:
    """Base of every task. Subclasses set `task`, `model_task` (the row of a model folder's
    TASKS table that serves it), `defaults` (the call parameters and their defaults)."""

    task: ClassVar[str] = ""
    model_task: ClassVar[str] = "base"
    defaults: ClassVar[dict[str, Any]] = {}
    # Outputs with a token axis: each row gets its own tokens back, padding cut off.
    token_outputs: ClassVar[tuple[str, ...]] = ()
    default_batch_size: ClassVar[int] = 8
    needs_tokenizer: ClassVar[bool] = True
    needs_image_processor: ClassVar[bool] = False
    input_kind: ClassVar[str] = "a str"

    def __init__(self, model, tokenizer=None, *, image_processor=None, batch_size: int | None = None,
                 **params):
        if self.needs_tokenizer and tokenizer is None:
            raise InputError(f"{self.task}: tokenizer is None; pass tokenizer= (a loom Tokenizer"
                             " or the folder / Hub repo id of one)")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.batch_size = _positive_int("batch_size", self.default_batch_size
                                        if batch_size is None else batch_size)
        self._logged: set[str] = set()
        self.params = {**self.defaults, **self._checked(params)}

    @property
    def device(self) -> torch.device:
        return self.model.device

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(task={self.task!r}, model={type(self.model).__name__},"
                f" device={self.device}, batch_size={self.batch_size})")

    # -- calling ----------------------------------------------------------------------------

    def __call__(self, inputs=None, /, **kwargs):
        """One input gives one result; a list gives a list in the same order; a generator or
        `datasets.Dataset` gives an iterator of results."""
        if inputs is None and "inputs" in kwargs:   # pipe(inputs=...) as in transformers
            inputs = kwargs.pop("inputs")
        p = {**self.params, **self._checked(kwargs)}
        if inputs is None:
            raise InputError(f"{self.task}: inputs is None; pass {self.input_kind} or a list of them")
        if self.is_single(inputs):
            return self.run([self.check_input(inputs, "inputs")], p)[0]
        if isinstance(inputs, (list, tuple)):
            if not inputs:
                raise InputError(f"{self.task}: inputs is an empty list; pass at least one input")
            return self.run([self.check_input(x, f"inputs[{i}]") for i, x in enumerate(inputs)], p)
        return self._stream(iter(inputs), p)

    def is_single(self, inputs) -> bool:
        """Whether `inputs` is one input (else a list, a generator or a Dataset)."""
        return isinstance(inputs, (str, bytes, dict)) or not isinstance(inputs, Iterable) or (
            isinstance(inputs, np.ndarray | torch.Tensor))

    def _stream(self, inputs: Iterator, p: dict) -> Iterator:
        chunk, size = [], self.batch_size * STREAM_CHUNK_BATCHES
        for i, x in enumerate(inputs):
            chunk.append(self.check_input(x, f"inputs[{i}]"))
            if len(chunk) == size:
                yield from self.run(chunk, p)
                chunk = []
        if chunk:
            yield from self.run(chunk, p)

    def run(self, items: list, p: dict) -> list:
        """Checked inputs -> results, in input order."""
        rows_per_item = self.preprocess(items, p)
        self._forward_rows([r for rows in rows_per_item for r in rows], p)
        return [self.postprocess(item, rows, p) for item, rows in zip(items, rows_per_item)]

    def _forward_rows(self, rows: list[Row], p: dict) -> None:
        # Longest first: similar lengths share a batch, and a too-large batch fails at once.
        order = sorted(range(len(rows)), key=lambda k: -len(rows[k].ids))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch_rows = [rows[k] for k in order[start:start + self.batch_size]]
                batch = self.collate(batch_rows)
                self._scatter(batch_rows, self.forward(batch, batch_rows, p), batch)

    def collate(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        """Token rows padded to the longest, on the model's device."""
        B, T = len(rows), max(len(r.ids) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = np.full((B, T), 0 if pad is None else pad, dtype=np.int64)
        mask = np.zeros((B, T), dtype=np.int64)
        types = np.zeros((B, T), dtype=np.int64)
        left = self.tokenizer.padding_side == "left"
        for b, r in enumerate(rows):
            span = slice(T - len(r.ids), T) if left else slice(0, len(r.ids))
            ids[b, span], mask[b, span] = r.ids, 1
            if r.type_ids is not None:
                types[b, span] = r.type_ids
        batch = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.tokenizer.model_input_names:
            batch["token_type_ids"] = types
        return {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}

    def _scatter(self, rows: list[Row], outputs, batch: dict) -> None:
        """Give each row its part of the batch outputs, as float32 NumPy."""
        if isinstance(outputs, list):   # the task split them itself
            for row, out in zip(rows, outputs):
                row.out = out
            return
        if self.token_outputs:   # a row's own tokens, whichever side was padded
            keep = batch["attention_mask"].bool().cpu().numpy()
        for name, value in outputs.items():
            value = value.float().cpu().numpy() if value.is_floating_point() else value.cpu().numpy()
            for b, row in enumerate(rows):
                row.out[name] = value[b][keep[b]] if name in self.token_outputs else value[b]

    # -- the three stages every task defines --------------------------------------------------

    def check_input(self, item, where: str):
        """The item if it fits the task (else an InputError naming `where`), normalised."""
        return check_text(item, where, self.task)

    def preprocess(self, items: list, p: dict) -> list[list[Row]]:
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor], rows: list[Row], p: dict):
        raise NotImplementedError

    def postprocess(self, item, rows: list[Row], p: dict):
        raise NotImplementedError

    # -- parameters -------------------------------------------------------------------------

    def _checked(self, params: dict) -> dict:
        unknown = sorted(set(params) - self.accepts())
        if unknown:
            raise InputError(f"{self.task}: unknown argument(s) {', '.join(unknown)}; this task"
                             f" takes {', '.join(sorted(self.accepts())) or 'no arguments'}")
        self.check_params(params)
        return params

    def accepts(self) -> set[str]:
        """The names of the call parameters."""
        return set(self.defaults)

    def check_params(self, params: dict) -> None:
        """Raise an InputError for a parameter value the task cannot use."""
        if "long_inputs" in params and params["long_inputs"] not in LONG_INPUTS:
            raise InputError(f"long_inputs must be one of {LONG_INPUTS}, found {params['long_inputs']!r}")

    def log_once(self, key: str, message: str, *args) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(message, *args)

    # -- text helpers shared by the text tasks ---------------------------------------------

    @property
    def max_length(self) -> int:
        """The longest row the model takes: the tokenizer's limit, capped by the model's
        position embeddings."""
        limit = self.tokenizer.model_max_length
        positions = getattr(self.model.config, "max_position_embeddings", None)
        return min(limit, positions) if positions else limit

    def encode(self, texts: list, pairs: list | None = None, *, long_inputs: str = "truncate",
               max_length: int | None = None, stride: int | None = None,
               truncation: str | bool = True, **tok_kwargs) -> list[list]:
        """Each text's token windows (`tokenizers.Encoding`s): one, cut to `max_length` (logged
        once), or with `long_inputs="window"` overlapping windows that cover all of it."""
        limit = max_length or self.max_length
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= self.max_length:
            raise InputError(f"{self.task}: max_length must be an int in 1..{self.max_length} (the"
                             f" most this model takes), found {limit!r}")
        window = long_inputs == "window"
        if window:
            stride = limit // 4 if stride is None else stride
            room = limit - self.tokenizer.num_special_tokens_to_add(pairs is not None)
            if isinstance(stride, bool) or not isinstance(stride, int) or not 0 <= stride < room:
                raise InputError(f"stride (tokens shared by consecutive windows) must be an int"
                                 f" >= 0 and < {room} (max_length {limit} less special tokens),"
                                 f" found {stride!r}")
            if pairs is not None and truncation is True:
                truncation = "only_first"   # windows over the text; its pair stays whole
        enc = self.tokenizer(texts, pairs, truncation=truncation, max_length=limit,
                             stride=stride if window else 0, return_overflowing_tokens=window,
                             **tok_kwargs)
        groups: list[list] = [[] for _ in texts]
        samples = enc["overflow_to_sample_mapping"] if window else range(len(texts))
        for sample, e in zip(samples, enc.encodings):
            groups[sample].append(e)
        if not window and any(e.overflowing for e in enc.encodings):
            self.log_once("truncated", "%s: an input longer than %d tokens was cut to fit the"
                          " model; pass long_inputs='window' to read all of it", self.task, limit)
        return groups


class GeneratingPipeline(Pipeline):
    """Base of the tasks that call `generate()`: every generation argument (and the names in
    `generate_extras`) is a call parameter, checked against the model's generation config."""

    generate_extras: ClassVar[frozenset[str]] = frozenset({"seed", "generator", "logits_processor",
                                                           "stopping_criteria"})

    def accepts(self) -> set[str]:
        from ..generation.config import GenerationConfig

        return set(self.defaults) | GenerationConfig.field_names() | self.generate_extras

    def check_params(self, params: dict) -> None:
        from ..generation.config import GenerationConfig

        super().check_params(params)
        config = {k: v for k, v in params.items() if k in GenerationConfig.field_names()}
        if config:
            self.model.generation_config.update(**config)  # raises, naming a bad value


class ImagePipeline(Pipeline):
    """Base of the image tasks: inputs are file paths, PIL images or arrays, preprocessed by
    the checkpoint's image processor into `pixel_values` rows."""

    needs_tokenizer = False
    needs_image_processor = True
    input_kind = "an image (a file path, a PIL image or an array)"

    def __init__(self, model, tokenizer=None, *, image_processor=None, **kwargs):
        if image_processor is None:
            raise InputError(f"{self.task}: image_processor is None; pass image_processor= (a loom"
                             " image processor or the folder / Hub repo id of one)")
        super().__init__(model, tokenizer, image_processor=image_processor, **kwargs)

    def is_single(self, inputs) -> bool:
        return not isinstance(inputs, (list, tuple)) and (
            isinstance(inputs, (str, os.PathLike, np.ndarray, torch.Tensor)) or _is_pil(inputs)
            or not isinstance(inputs, Iterable))

    def check_input(self, item, where: str):
        return check_image(item, where, self.task)

    def image_rows(self, items: list) -> list[list[Row]]:
        pixels = self.image_processor(items)["pixel_values"]
        return [[Row(data={"pixel_values": x})] for x in pixels]

    def collate(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        shapes = {r.data["pixel_values"].shape for r in rows}
        if len(shapes) > 1:
            raise InputError(f"{self.task}: the image processor gave images of shapes"
                             f" {sorted(shapes)}; a batch needs one size (use batch_size=1)")
        pixels = torch.from_numpy(np.stack([r.data["pixel_values"] for r in rows]))
        return {"pixel_values": pixels.to(self.device, self.model.dtype)}


SAMPLING_ONLY = {"temperature", "top_k", "top_p", "min_p"}


def with_generation_defaults(model, kwargs: dict, defaults: dict, tokenizer=None) -> dict:
    """`generate()` arguments: the call's `kwargs`, plus the pipeline's `defaults` for what
    neither they nor the model's generation config set (as transformers' pipelines: no
    default max_new_tokens over a set max_length, sampling values only when sampling), plus
    the tokenizer's pad token."""
    kwargs = dict(kwargs)
    already = {**model.generation_config.to_dict(), **kwargs}
    added = {k: v for k, v in defaults.items() if k not in already
             and not (k == "max_new_tokens" and "max_length" in already)}
    if not {**already, **added}.get("do_sample"):
        added = {k: v for k, v in added.items() if k not in SAMPLING_ONLY}
    kwargs.update(added)
    if "pad_token_id" not in already and tokenizer is not None and tokenizer.pad_token_id is not None:
        kwargs["pad_token_id"] = tokenizer.pad_token_id
    return kwargs


def check_image(item, where: str, task: str):
    """A file path that exists, a PIL image, or an array / tensor; else a loom error."""
    if item is None:
        raise InputError(f"{task}: {where} is None; expected an image (a file path, a PIL image"
                         " or an array)")
    if isinstance(item, (str, os.PathLike)):
        path = str(item)
        if not path.strip():
            raise InputError(f"{task}: {where} is an empty string; expected an image file path")
        if path.startswith(("http://", "https://")):
            raise InputError(f"{task}: {where} is a URL ({path:.60}); loom reads local files:"
                             " download it first, or pass a PIL image")
        if not os.path.isfile(path):
            raise InputError(f"{task}: {where}: the image file {path} does not exist")
        return item
    if _is_pil(item) or isinstance(item, (np.ndarray, torch.Tensor)):
        return item
    raise InputError(f"{task}: {where} must be an image (a file path, a PIL image or an array),"
                     f" found {type(item).__name__}")


def _is_pil(x) -> bool:
    return type(x).__module__.startswith("PIL.") and hasattr(x, "getbands")


def check_text(item, where: str, task: str, *, allow_empty: bool = False) -> str:
    if item is None:
        raise InputError(f"{task}: {where} is None; expected a str")
    if not isinstance(item, str):
        raise InputError(f"{task}: {where} must be a str, found {type(item).__name__}: {item!r:.60}")
    if not allow_empty and not item.strip():
        raise InputError(f"{task}: {where} is an empty string; expected some text")
    return item


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive int, found {value!r}")
    return value


def check_top_k(value, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    _positive_int("top_k", value)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


__all__ = ["Pipeline", "GeneratingPipeline", "ImagePipeline", "Row", "check_image", "check_text", "check_top_k", "softmax",
           "sigmoid", "with_generation_defaults"]
