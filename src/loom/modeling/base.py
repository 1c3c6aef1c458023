"""`PreTrainedModel`: the torch base class of every loom model.

It loads (`from_pretrained`: config first, model built on the meta device, weights mapped
from disk, only what the checkpoint lacks initialised), saves (`save_pretrained`: atomic,
safetensors, sharded), and gives every model the same handles on its internals: input and
output embeddings, `resize_token_embeddings`, `prune_heads`, `num_parameters`.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..configuration import CONFIG_NAME, Config
from ..errors import ConfigError, InputError
from ..hub import pin
from ..hub_push import PushToHubMixin
from ..io import atomic_folder
from . import weights
from .init import init_module

logger = logging.getLogger(__name__)


class PreTrainedModel(nn.Module, PushToHubMixin):
    config_class: ClassVar[type[Config]] = Config
    # Name of the base model's attribute in head models ("bert"); keys carry it as prefix.
    base_model_prefix: ClassVar[str] = ""
    main_input_name: ClassVar[str] = "input_ids"
    # Legacy checkpoint key layouts, as (regex, replacement) applied to every key on load.
    RENAMES: ClassVar[list[tuple[str, str]]] = []
    # Checkpoint keys that are fine to drop without a report (regexes).
    IGNORE_UNEXPECTED: ClassVar[list[str]] = []
    # Extra copies written on save for readers that want another name: {key: alias}.
    SAVE_ALIASES: ClassVar[dict[str, str]] = {}
    # Output weights tied to input embeddings when config.tie_word_embeddings: {target: source}.
    TIED_WEIGHTS: ClassVar[dict[str, str]] = {}

    def __init__(self, config: Config):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"found {type(config).__name__}"
            )
        self.config = config

    def post_init(self) -> None:
        """Call at the end of `__init__`: initialise, prune what the config says, tie."""
        self.apply(self._init_weights)
        if self.config.pruned_heads:
            self.base_model._prune_heads(self.config.pruned_heads)
        self.tie_weights()

    def _init_weights(self, module: nn.Module) -> None:
        init_module(module, getattr(self.config, "initializer_range", 0.02))

    # -- loading --------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo_id: str | os.PathLike,
        *,
        config: Config | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        subfolder: str | None = None,
        force_download: bool = False,
        dtype: str | torch.dtype | None = None,
        torch_dtype: str | torch.dtype | None = None,
        device: str | torch.device | None = None,
        ignore_mismatched_sizes: bool = False,
        gguf_file: str | os.PathLike | None = None,
        **config_overrides,
    ):
        """Load a model from a folder or Hub repo with `config.json` and weights.

        With `gguf_file` (a file in that folder or repo), or a path to a .gguf file, config
        and weights come from llama.cpp's GGUF file instead, dequantised (see modeling/gguf.py).
        """
        # One commit for config and weights: the revision is pinned on its first answer.
        hub = dict(revision=pin(path_or_repo_id, revision), cache_dir=cache_dir,
                   local_files_only=local_files_only, token=token, subfolder=subfolder,
                   force_download=force_download)
        from .gguf import read_gguf, resolve_gguf

        gguf_path = resolve_gguf(path_or_repo_id, gguf_file, **hub)
        if gguf_path is not None:
            path_or_repo_id, gguf_file = gguf_path, None   # resolved once, for config and weights
        if config is None:
            config = cls.config_class.from_pretrained(path_or_repo_id, **hub, **config_overrides)
        elif config_overrides:
            config = config.replace(**config_overrides)
        # The config is valid before any weight file is looked for or downloaded.
        if gguf_path is not None:
            files, state = [gguf_path], read_gguf(gguf_path).state_dict(config)
        else:
            files = weights.find_checkpoint(path_or_repo_id, **hub)
            state = weights.read_state_dict(files)
        target = _resolve_dtype(dtype if dtype is not None else torch_dtype, config, state)
        with torch.device("meta"), _SkipMetaInit():
            model = cls(config)
        report = weights.load_into(
            model, state, dtype=target, renames=cls.RENAMES,
            ignore_unexpected=cls.IGNORE_UNEXPECTED, prefix=cls.base_model_prefix,
            ignore_mismatched_sizes=ignore_mismatched_sizes, source=files[0].parent,
        )
        del state
        model.tie_weights()
        tied = {k for k, _ in model._tied_pairs()}
        report.tied_keys = [k for k in report.missing_keys if k in tied]
        report.missing_keys = [k for k in report.missing_keys if k not in tied]
        weights.materialize(model, target, model._init_weights)
        model.tie_weights()
        report.log(cls.__name__, files[0].parent)
        model.loading_report = report
        model.config.dtype = str(target).removeprefix("torch.")
        model.eval()  # loaded models predict; call .train() to fine-tune
        if device is not None:
            model.to(device)
        return model

    # -- saving ---------------------------------------------------------------------------

    def save_pretrained(self, save_directory: str | os.PathLike, *, max_shard_size: int | str = "5GB",
                        state_dict: dict[str, torch.Tensor] | None = None) -> list[str]:
        """Write config.json and safetensors (sharded above `max_shard_size`) atomically."""
        state = self._state_for_save() if state_dict is None else state_dict
        self.config.architectures = [type(self).__name__]
        dtypes = [p.dtype for p in self.parameters() if p.is_floating_point()]
        if dtypes:
            self.config.dtype = str(dtypes[0]).removeprefix("torch.")
        target = Path(save_directory)
        with atomic_folder(target) as tmp:
            written = weights.save_state_dict(state, tmp, max_shard_size)
            (tmp / CONFIG_NAME).write_text(self.config.to_json_string(), encoding="utf-8")
        for old in target.iterdir():  # weights of an earlier save in another layout confuse loads
            if old.name not in written and any(
                fnmatch.fnmatch(old.name, p) for p in weights.WEIGHT_FILE_PATTERNS
            ):
                old.unlink()
        return written + [CONFIG_NAME]

    def _state_for_save(self) -> dict[str, torch.Tensor]:
        state: dict[str, torch.Tensor] = {}
        seen: set[int] = set()
        for name, t in self.state_dict().items():  # a tied weight is written once
            if t.numel() and t.data_ptr() in seen and name in self.TIED_WEIGHTS:
                continue
            seen.add(t.data_ptr())
            state[name] = t
        for key, alias in self.SAVE_ALIASES.items():
            if key in state:
                state[alias] = state[key].clone()
        return state

    # -- internals exposed the same way for every model -----------------------------------

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    def get_input_embeddings(self) -> nn.Embedding:
        base = self.base_model
        if base is self:
            raise NotImplementedError(f"{type(self).__name__} must define get_input_embeddings")
        return base.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        base = self.base_model
        if base is self:
            raise NotImplementedError(f"{type(self).__name__} must define set_input_embeddings")
        base.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear | None:
        return None

    def _tied_pairs(self):
        if not getattr(self.config, "tie_word_embeddings", True):
            return []
        return list(self.TIED_WEIGHTS.items())

    def tie_weights(self) -> None:
        """Make each tied output weight the very Parameter of its source."""
        for target, source in self._tied_pairs():
            mod_name, _, attr = target.rpartition(".")
            src = self.get_parameter(source)
            setattr(self.get_submodule(mod_name), attr, src)

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        skip = set()
        if exclude_embeddings:
            skip = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)}
        seen, total = set(), 0
        for p in self.parameters():
            if id(p) in seen or id(p) in skip or (only_trainable and not p.requires_grad):
                continue
            seen.add(id(p))
            total += p.numel()
        return total

    def resize_token_embeddings(self, new_num_tokens: int | None = None,
                                pad_to_multiple_of: int | None = None) -> nn.Embedding:
        """Grow or shrink the vocabulary; new rows start at the mean of the old ones."""
        old = self.get_input_embeddings()
        n = old.num_embeddings if new_num_tokens is None else int(new_num_tokens)
        if pad_to_multiple_of is not None:
            if pad_to_multiple_of <= 0:
                raise InputError(f"pad_to_multiple_of must be a positive int, found {pad_to_multiple_of}")
            n = -(-n // pad_to_multiple_of) * pad_to_multiple_of
        if n <= 0:
            raise InputError(f"new_num_tokens must be positive, found {new_num_tokens}")
        new = nn.Embedding(n, old.embedding_dim, padding_idx=old.padding_idx if (old.padding_idx or 0) < n else None,
                           device=old.weight.device, dtype=old.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(_resized_rows(old.weight, n))
        new.weight.requires_grad_(old.weight.requires_grad)
        self.set_input_embeddings(new)
        out = self.get_output_embeddings()
        if out is not None:
            # Tied when a pair targets the output layer (others may tie input tables, as T5's stacks).
            tied = any(t.endswith(".weight") and self.get_submodule(t.rpartition(".")[0]) is out
                       for t, _ in self._tied_pairs())
            with torch.no_grad():
                if not tied:
                    out.weight = nn.Parameter(_resized_rows(out.weight, n))
                if out.bias is not None:
                    out.bias = nn.Parameter(_resized_rows(out.bias, n))
            out.out_features = n
        self.tie_weights()
        self.config.vocab_size = n
        return self.get_input_embeddings()

    def prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        """Remove attention heads for good: {layer: [head, ...]}; kept in config.pruned_heads."""
        merged = {int(k): set(v) for k, v in self.config.pruned_heads.items()}
        for layer, heads in heads_to_prune.items():
            merged.setdefault(int(layer), set()).update(int(h) for h in heads)
        self.base_model._prune_heads({int(k): list(v) for k, v in heads_to_prune.items()})
        self.config.pruned_heads = {k: sorted(v) for k, v in merged.items()}


class _SkipMetaInit(TorchFunctionMode):
    """Random and fill initialisers are no-ops on meta tensors while a model is built to load.

    They change nothing there, but torch runs several of them (`normal_`, `erfinv_`) on meta
    through Python references whose first call imports torch._dynamo: about 0.7 s and 60 MB.
    """

    # The nn.init functions, and the tensor methods they and modules' reset_parameters call.
    OPS = {f for n, f in vars(nn.init).items() if n.endswith("_") and not n.startswith("_")}
    OPS |= {getattr(torch.Tensor, n) for n in (
        "normal_", "uniform_", "erfinv_", "clamp_", "exponential_", "cauchy_", "log_normal_",
        "geometric_", "bernoulli_", "random_", "zero_", "fill_", "mul_", "add_",
    )}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        t = args[0] if args else kwargs.get("tensor")  # nn.init functions arrive by keyword
        if func in self.OPS and isinstance(t, torch.Tensor) and t.is_meta:
            return t
        return func(*args, **kwargs)


def _resized_rows(old: torch.Tensor, n: int) -> torch.Tensor:
    """First min(n, old) rows of `old`; extra rows are the mean of the old rows."""
    keep = min(n, old.shape[0])
    new = old.new_empty((n, *old.shape[1:]))
    new[:keep] = old[:keep]
    if n > keep:
        new[keep:] = old.float().mean(dim=0).to(old.dtype)
    return new


_DTYPES = {
    "float32": torch.float32, "float": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "half": torch.float16, "fp16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float64": torch.float64,
}


def _resolve_dtype(dtype, config: Config, state: dict[str, torch.Tensor]) -> torch.dtype:
    """None -> float32; "auto" -> the config's dtype, else the checkpoint's first float tensor."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if config.dtype in _DTYPES:
            return _DTYPES[config.dtype]
        return next((t.dtype for t in state.values() if t.is_floating_point()), torch.float32)
    name = str(dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise InputError(f"dtype must be a torch dtype, 'auto' or one of {sorted(_DTYPES)}, found {dtype!r}")
    return _DTYPES[name]
