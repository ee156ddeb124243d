"""torchrun support: who am I, and the few collective steps the trainer needs.

Under ``torchrun --nproc_per_node N -m train ...`` (env RANK / WORLD_SIZE set)
the process group starts once (nccl on GPUs, gloo on CPUs). Without it every
helper is the single-process identity, so the trainer has no second code path.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def init(device_kind: str = "auto") -> World:
    """Join the process group when launched by torchrun; idempotent."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and device_kind != "cpu"
        if cuda:  # NCCL collectives (all_gather_object included) run on the current device: this rank's GPU
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), local_rank)


def current() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return World()


def gather(obj) -> list:
    """Every rank's object, in rank order (the object itself when alone)."""
    world = current()
    if not world.active:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def any_true(*flags: bool) -> list[bool]:
    """For each flag: is it set on any rank? (one small all-reduce per call)"""
    world = current()
    if not world.active:
        return list(flags)
    t = torch.tensor([int(f) for f in flags], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def barrier() -> None:
    if current().active:
        dist.barrier()


def distribute(net: nn.Module, cfg, device: torch.device, world: World) -> nn.Module:
    """The module the train step runs: ``net``, wrapped in DDP under torchrun (gradients averaged) and
    compiled with --compile. Evaluation runs ``net`` itself: it shares the same parameters."""
    if world.active:
        if cfg.sync_bn:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(net) if cfg.compile else net
