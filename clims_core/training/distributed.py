"""Data-parallel training with PyTorch's own machinery: ``torchrun`` starts the processes, DDP syncs the gradients.

A stage calls :func:`context` once. Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) it joins the process
group (NCCL on CUDA, gloo on CPU) and each process takes its share of every global batch; otherwise it is a no-op
single-process context, so the same loop serves a laptop, one GPU and several.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional  # noqa: F401 (differentiable all_gather)
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from clims_core.device import pick_device


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process on CUDA; CPU processes share the CPU."""
        if device.type == "cuda" and self.enabled:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def prepare(self, model: nn.Module, device: torch.device) -> nn.Module:
        """SyncBatchNorm on CUDA, so trained BatchNorm sees the global batch's statistics as one process would.

        PyTorch syncs BatchNorm only on accelerators; CPU (gloo) processes keep per-process statistics, which is why
        the CPU equivalence test uses frozen BatchNorm. Parameters are kept (the optimizer may already hold them)."""
        if self.enabled and device.type == "cuda":
            return nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def average_gradients(self, module: nn.Module) -> None:
        """All-reduce the gradients of ``module`` to their mean over processes (for steps that run several backward
        passes, which DDP's one-forward-one-backward hooks do not allow); one collective for all of them."""
        if not self.enabled:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """DDP around ``module`` (its ``forward`` must compute the whole loss, so every parameter use is seen)."""
        if not self.enabled:
            return module
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def share(self, batch: list[int]) -> list[int]:
        """This process's part of a global batch (every ``world_size``-th index): the parts' union is the batch."""
        if len(batch) % self.world_size:
            raise ValueError(f"batch size {len(batch)} is not divisible by the {self.world_size} training processes")
        return batch[self.rank::self.world_size]

    def mean(self, value: float) -> float:
        """A float averaged over processes (for logged losses)."""
        if not self.enabled:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every process's rows, concatenated in rank order, with gradients flowing back to their process."""
        if not self.enabled:
            return tensor
        return torch.cat(torch.distributed.nn.functional.all_gather(tensor))

    def total(self, tensor: torch.Tensor) -> torch.Tensor:
        """A tensor summed over processes (a detached copy: for normalisers such as a loss's global pair count)."""
        if not self.enabled:
            return tensor
        tensor = tensor.detach().clone()
        dist.all_reduce(tensor)
        return tensor

    def any(self, flag: bool) -> bool:
        """True in every process when ``flag`` is true in any (so all stop at the same step)."""
        if not self.enabled:
            return flag
        tensor = torch.tensor([int(flag)])
        dist.all_reduce(tensor)
        return bool(tensor.item())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()

    def finish(self) -> None:
        """End of a training stage: wait until the main process has written its outputs, then leave the group."""
        self.barrier()
        self.close()

    def gather_order(self, n: int) -> list[int]:
        """Where :meth:`gather` puts the rows of an ``n``-row global batch: the processes' shares in rank order."""
        rows = list(range(n))
        return [i for rank in range(self.world_size) for i in rows[rank::self.world_size]]


def start(device_setting: str, threads: int) -> tuple[Distributed, torch.device]:
    """A training stage's process: its place in the ``torchrun`` job (if any) and its device (one GPU per process)."""
    device = pick_device(device_setting, threads)
    dist = context(device)
    return dist, dist.device(device)


def context(device: torch.device) -> Distributed:
    """The process's place in a ``torchrun`` job (joining its process group), or a single-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return Distributed(rank, world_size, local_rank)
