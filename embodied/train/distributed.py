"""Process group setup for `torchrun`: the same command runs on one process or on N.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them the run is a single process.
Backend: NCCL when CUDA is available, gloo on CPU. Rank 0 writes every file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """Where this process stands: rank, world size, local rank, device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def any(self, flag: bool) -> bool:
        """True when `flag` is True on any process (a collective: every rank must call it)."""
        if not self.active:
            return bool(flag)
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean(self, value: float) -> float:
        """Mean of `value` over processes (a collective)."""
        if not self.active:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def gather(self, obj):
        """[obj of rank 0, obj of rank 1, ...] on every rank (a collective)."""
        if not self.active:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def setup() -> Dist:
    """Join the process group when launched by torchrun; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world <= 1:
        return Dist(device="cuda" if cuda else "cpu")
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local)
    else:  # share the cores: N processes on one machine, one slice each
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Dist(rank, world, local, f"cuda:{local}" if cuda else "cpu")


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()
