"""One process or many (``torchrun``): process-group set-up, the device of this rank, small collectives.

``torchrun --nproc-per-node N [--nnodes M ...] -m ino train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK; a plain
``ino train`` is a world of one and never touches ``torch.distributed`` (the authors' code crashed there,
docs/method.md §10.12). NCCL on CUDA, gloo on the CPU (which is how CI tests the distributed path).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ino.errors import InoError


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a torch device (None: CUDA when available, else the CPU); one message for a name that is not a
    device, or names CUDA on a machine without it."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise InoError(f"--device {device}: not a device name (cpu, cuda, cuda:1, ...)") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise InoError(f"--device {device}: no CUDA device is available on this machine")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        raise InoError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return chosen


def world_size_from_environment() -> int:
    """The number of ranks torchrun launched (1 for a plain command), known before joining the group."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: str | None = None, timeout: timedelta | None = None) -> Distributed:
    """Join the process group when launched by torchrun; pick this rank's device (CUDA when available).

    ``timeout`` bounds every collective, barriers included (torch's default, 10 to 30 minutes, suits training's
    lock-step ranks, not ranks that wait for each other's last long video).
    """
    world_size = world_size_from_environment()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        chosen = torch.device("cuda", local_rank) if chosen.index is None else chosen
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", timeout=timeout)
    return Distributed(rank, world_size, local_rank, chosen)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Element-wise mean of a small tensor over all ranks (identity in one process)."""
    if dist.is_available() and dist.is_initialized():
        values = values.clone()
        dist.all_reduce(values)
        values /= dist.get_world_size()
    return values


def max_over_ranks(value: int) -> int:
    """The largest of every rank's ``value`` (``value`` itself in one process): how ranks decide things together."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    tensor = torch.tensor([value], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def any_over_ranks(flag: bool) -> bool:
    """True when ``flag`` is true on any rank: ranks stop together."""
    return bool(max_over_ranks(int(flag)))


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
