"""The training loop shared by the stages: seeded batch plan, DDP, step checkpoints for resume, progress, history.

Why a batch plan instead of ``DataLoader(shuffle=True)``: the order of every epoch is a pure function of
``(seed, epoch)``, and each sample's augmentation of ``(seed, epoch, index)`` (see the datasets). So a run resumed
from a step checkpoint sees exactly the batches an uninterrupted run would, and ``n`` DDP processes, each taking
every ``n``-th sample of a global batch, together see the same global batches as one process does.

Step checkpoints (model, optimizer, step, history) live in a work folder, never beside the declared outputs: a job
killed by SIGKILL resumes from the last one; SIGTERM (Slurm's preemption and time limit, Snakemake's Ctrl-C) writes
one at the end of the current step before exiting.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from clims_core.device import autocast, memory_format
from clims_core.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from clims_core.training.distributed import Distributed

log = logging.getLogger(__name__)
TERMINATED_EXIT_CODE = 143  # 128 + SIGTERM, what a shell reports for a job ended by SIGTERM


@dataclass(frozen=True)
class LoopSettings:
    epochs: int
    batch_size: int  # the global batch, over all processes
    seed: int = 0
    workers: int = 0
    checkpoint_every: int = 50  # steps between resume checkpoints (0: only on SIGTERM)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The global batches of one epoch: a permutation seeded by (seed, epoch), the last partial batch dropped."""
    order = np.random.default_rng([seed, epoch, 7]).permutation(n)
    return [order[i:i + batch_size].tolist() for i in range(0, n - batch_size + 1, batch_size)]


class _Terminated:
    """Turns SIGTERM into a flag checked between steps (only in the main thread, where Python allows handlers)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _Terminated:
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread
            self._previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


class ResumeState:
    """The step checkpoint of one training job, valid only for the same job identity (settings + code)."""

    def __init__(self, path: str | Path | None, identity: str):
        self.path = Path(path) if path else None
        self.identity = identity

    def load(self) -> dict[str, Any] | None:
        if self.path is None or not self.path.is_file():
            return None
        try:
            state = load_checkpoint(self.path, required=("model", "optimizer", "step", "identity", "history"))
        except CheckpointError as error:
            log.warning("ignoring unreadable resume checkpoint: %s", error)
            return None
        if state["identity"] != self.identity:
            log.warning("%s belongs to other settings or code; starting from scratch", self.path)
            return None
        return state

    def save(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, history: list[dict],
             epoch_sums: dict[str, float]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.path, model.state_dict(), {}, step, optimizer=optimizer.state_dict(),
                        identity=self.identity, history=history, epoch_sums=epoch_sums)

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


StepFunction = Callable[[torch.Tensor, torch.Tensor, int, int], tuple[torch.Tensor, dict[str, float]]]


def _batches(dataset: Dataset, plan: list[list[int]], workers: int) -> Iterator[Any]:
    if not plan:
        return iter(())
    return iter(DataLoader(dataset, batch_sampler=plan, num_workers=workers))


def train_loop(objective: nn.Module, model: nn.Module, optimizer: torch.optim.Optimizer, dataset: Dataset,
               settings: LoopSettings, device: torch.device, dist: Distributed, resume: ResumeState, desc: str,
               lr_factor: Callable[[int, int], float], shown: tuple[str, ...] = ("loss",)) -> tuple[list[dict], int]:
    """Run ``settings.epochs`` epochs of ``objective(images, labels, step, total) -> (loss, parts)``.

    ``objective`` (an ``nn.Module`` holding ``model``) is what DDP wraps, so one forward computes the whole loss.
    The optimizer's groups carry ``initial_lr``; each step sets ``lr = initial_lr * lr_factor(step, total)``.
    Returns the per-epoch means of the loss parts and the number of steps.
    """
    steps_per_epoch = len(dataset) // settings.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{desc}: {len(dataset)} images are fewer than one batch of {settings.batch_size}")
    total = settings.epochs * steps_per_epoch
    step, history, sums = 0, [], {}
    state = resume.load()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history, sums = state["step"], list(state["history"]), dict(state.get("epoch_sums", {}))
        log.info("%s: resuming at step %d of %d from %s", desc, step, total, resume.path)
    wrapped = dist.wrap(objective, device)
    fmt = memory_format(device)
    with _Terminated() as terminated:
        while step < total:
            epoch, first = divmod(step, steps_per_epoch)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            plan = [dist.share(b) for b in epoch_batches(len(dataset), settings.batch_size, settings.seed, epoch)]
            bar = tqdm(_batches(dataset, plan[first:], settings.workers), total=steps_per_epoch, initial=first,
                       desc=f"{desc} epoch {epoch + 1}/{settings.epochs}", unit="batch", mininterval=2.0,
                       disable=not dist.is_main)
            for images, labels, *_ in bar:
                for group in optimizer.param_groups:
                    group["lr"] = group["initial_lr"] * lr_factor(step, total)
                images = images.to(device, memory_format=fmt)
                with autocast(device):
                    loss, parts = wrapped(images, labels.to(device), step, total)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                parts = {"loss": loss.item(), **parts}
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + value
                bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items() if k in shown}, refresh=False)
                if step % steps_per_epoch == 0:
                    history.append({k: dist.mean(v / steps_per_epoch) for k, v in sums.items()})
                    sums = {}
                    log.info("%s epoch %d/%d: %s", desc, epoch + 1, settings.epochs,
                             {k: round(v, 4) for k, v in history[-1].items()})
                stop = dist.any(terminated.requested)
                periodic = settings.checkpoint_every and step % settings.checkpoint_every == 0 and step < total
                if (periodic or stop) and dist.is_main:
                    resume.save(model, optimizer, step, history, sums)
                if stop:
                    dist.barrier()
                    log.warning("%s: SIGTERM at step %d; resume checkpoint %s", desc, step, resume.path)
                    raise SystemExit(TERMINATED_EXIT_CODE)
            bar.close()
    return history, step
