"""One process or many: the process group, the model wrapper, and the few collectives.

Under `torchrun --nproc_per_node=N` (RANK / WORLD_SIZE / LOCAL_RANK set) the Trainer joins
the process group (gloo on CPU, nccl on CUDA) and wraps the model in
DistributedDataParallel, or shards it with FSDP2 (`fully_shard` on every block of each
`nn.ModuleList`, then the root) when `fsdp=True`. Without those variables everything here
is a no-op for a world of one.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass
class DistState:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    fsdp: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(args) -> DistState:
    """Read the launcher's environment, pick the device, join the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and not args.use_cpu
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if args.fsdp and world == 1:
        logger.info("fsdp=True in a single process: nothing to shard, training unsharded")
    if world > 1 and not dist.is_initialized():
        backend = args.ddp_backend or ("nccl" if cuda else "gloo")
        if backend == "nccl" and not cuda:
            raise ConfigError("ddp_backend='nccl' needs CUDA devices; use 'gloo' on CPU")
        dist.init_process_group(backend=backend, device_id=device if cuda else None)
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistState(rank=rank, world_size=world, local_rank=local_rank, device=device,
                     fsdp=bool(args.fsdp) and world > 1)


def wrap(model: nn.Module, state: DistState, args=None) -> nn.Module:
    """The module the loop calls: the model itself, DDP around it, or the model sharded."""
    if not state.enabled:
        return model
    if state.fsdp:
        from torch.distributed.fsdp import fully_shard

        for module in model.modules():
            if isinstance(module, nn.ModuleList):
                for block in module:
                    fully_shard(block)
        fully_shard(model)
        return model
    ids = [state.device.index] if state.device.type == "cuda" else None
    unused = bool(getattr(args, "ddp_find_unused_parameters", False))
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused)


@contextlib.contextmanager
def sync_gradients(model: nn.Module, state: DistState, sync: bool):
    """Reduce gradients across ranks only on the last micro-batch of an accumulation window."""
    if sync or not state.enabled:
        yield
    elif isinstance(model, nn.parallel.DistributedDataParallel):
        with model.no_sync():
            yield
    else:  # FSDP2
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def all_reduce_sum(value: torch.Tensor, state: DistState) -> torch.Tensor:
    if state.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def gather_objects(obj, state: DistState) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if not state.enabled:
        return [obj]
    out = [None] * state.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, state: DistState):
    if not state.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(state: DistState) -> None:
    if state.enabled:
        dist.barrier()


def full_model_state(model: nn.Module, state: DistState) -> dict[str, torch.Tensor] | None:
    """The whole state dict on CPU (gathered from shards under FSDP); None when not sharded."""
    if not state.fsdp:
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_model_state(model: nn.Module, full: dict[str, torch.Tensor], state: DistState) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True, strict=False))


def optimizer_state(model: nn.Module, optimizer, state: DistState) -> dict:
    if not state.fsdp:
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer,
                                    options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_optimizer_state(model: nn.Module, optimizer, saved: dict, state: DistState) -> None:
    if not state.fsdp:
        optimizer.load_state_dict(saved)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, saved, options=StateDictOptions(full_state_dict=True))


def cleanup(state: DistState) -> None:
    """Leave the process group the Trainer joined; call it at the end of a torchrun script.

    Drop the Trainer and model first: a process group that FSDP's device mesh still holds at
    interpreter exit can abort the process (gloo's worker threads outlive Python)."""
    if state.enabled and dist.is_initialized():
        dist.barrier()
        gc.collect()
        dist.destroy_process_group()


__all__ = ["DistState", "setup", "wrap", "unwrap"]
