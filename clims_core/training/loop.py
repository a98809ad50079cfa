"""The training loop shared by the stages: seeded batch plans, DDP, step checkpoints for resume, progress, history.

Why batch plans instead of ``DataLoader(shuffle=True)``: the order of every epoch is a pure function of
``(seed, epoch)`` (:class:`EpochPlan`: ``train_cam``, ``train_irn``) or of the step (:class:`PairedStreams`:
``train_seg``'s pixel-labeled and image-level streams), and each sample's augmentation of its key (see the datasets).
So a run resumed from a step checkpoint sees exactly the batches an uninterrupted run would, and ``n`` DDP processes,
each taking every ``n``-th sample of a global batch, together see the same global batches as one process does.

A step function does forward and backward and leaves the gradients averaged over processes: :class:`LossStep` through
DDP for one-forward objectives, or its own all-reduce (``train_seg``'s chunked backward).

Step checkpoints (model, optimizer, step, history) live in a work folder, never beside the declared outputs: a job
killed by SIGKILL resumes from the last one; SIGTERM (Slurm's preemption and time limit, Snakemake's Ctrl-C) writes
one at the end of the current step before exiting.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

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
    checkpoint_every: int = 50  # steps between resume checkpoints (0: only on SIGTERM)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The global batches of one epoch: a permutation seeded by (seed, epoch), the last partial batch dropped."""
    order = np.random.default_rng([seed, epoch, 7]).permutation(n)
    return [order[i:i + batch_size].tolist() for i in range(0, n - batch_size + 1, batch_size)]


def _loader(dataset: Dataset, plan: list[list[Any]], workers: int) -> Iterator[Any]:
    """Batches of ``plan``. The loader gets its own generator: by default each new DataLoader iterator draws its base
    seed from the global RNG, which would shift the random stream of the model (CCT's perturbations) by one draw per
    epoch and differently in a resumed run."""
    if not plan:
        return iter(())
    return iter(DataLoader(dataset, batch_sampler=plan, num_workers=workers, generator=torch.Generator()))


class EpochPlan:
    """One dataset, a fresh seeded permutation per epoch (``train_cam``, ``train_irn``); a batch is the dataset's
    collated items. Datasets with ``set_epoch`` draw their augmentation from ``(seed, epoch, index)``."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, workers: int = 0, name: str = "training"):
        self.dataset, self.batch_size, self.seed, self.workers = dataset, batch_size, seed, workers
        self.steps_per_epoch = len(dataset) // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"{name}: {len(dataset)} images are fewer than one batch of {batch_size}")

    def epoch(self, epoch: int, first: int, dist: Distributed) -> Iterator[Any]:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        plan = [dist.share(b) for b in epoch_batches(len(self.dataset), self.batch_size, self.seed, epoch)]
        return _loader(self.dataset, plan[first:], self.workers)


class PairedStreams:
    """Two endless streams of ``(pass, index)`` keys (:class:`~clims_core.data.segmentation.PassSampler`), one batch
    of each per step (``train_seg``: pixel-labeled + image-level); an epoch is one pass over the second stream.

    Global batch ``b`` of a stream is items ``b * batch .. (b + 1) * batch - 1`` of its key sequence, so step ``s``
    reads batch ``s`` of both, whichever process or resumed run asks."""

    def __init__(self, streams: list[tuple[Dataset, Any, int]], workers: int = 0):
        self.streams, self.workers = streams, workers  # (dataset, sampler with .batches(batch, start), batch size)
        self.steps_per_epoch = len(streams[-1][0]) // streams[-1][2]

    def epoch(self, epoch: int, first: int, dist: Distributed) -> Iterator[tuple[Any, ...]]:
        start, count = epoch * self.steps_per_epoch + first, self.steps_per_epoch - first
        loaders = [_loader(dataset, [dist.share(b) for b in islice(sampler.batches(batch, start), count)],
                           self.workers) for dataset, sampler, batch in self.streams]
        return zip(*loaders)


def to_device(batch: Any, device: torch.device) -> Any:
    """Tensors of a (nested) batch onto ``device``; image batches (4-D floating) in the device's memory format."""
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 4 and batch.is_floating_point():
            return batch.to(device, memory_format=memory_format(device))
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(item, device) for item in batch)
    return batch


class LossStep:
    """Forward and backward of an ``nn.Module`` objective, ``objective(images, labels, step, total) -> (loss, parts)``,
    DDP-wrapped when distributed (so its one forward must compute the whole loss, every parameter use seen)."""

    def __init__(self, objective: nn.Module, device: torch.device, dist: Distributed, precision: str = "auto"):
        self.wrapped, self.device, self.precision = dist.wrap(objective, device), device, precision

    def __call__(self, batch: Any, step: int, total: int) -> dict[str, float]:
        images, labels = batch[0], batch[1]
        with autocast(self.device, self.precision):
            loss, parts = self.wrapped(images, labels, step, total)
        loss.backward()
        return {"loss": loss.item(), **parts}


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


def rng_state() -> dict[str, Any]:
    """torch's global RNG states (dropout, noise and other random layers draw from them), for exact resume."""
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(state: dict[str, Any] | None) -> None:
    if not state:
        return
    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
             epoch_sums: dict[str, float], source: dict[str, Any] | None = None) -> None:
        """``source``: the batch source's own state, for sources that draw batches from a generator."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.path, model.state_dict(), {}, step, optimizer=optimizer.state_dict(),
                        identity=self.identity, history=history, epoch_sums=epoch_sums, source=source,
                        rng=rng_state())

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


StepFunction = Callable[[Any, int, int], dict[str, float]]


class BatchSource(Protocol):
    """Where the loop's batches come from (:class:`EpochPlan`, :class:`PairedStreams`, the contrastive loop's).
    Sources that draw batches from a generator also have ``state() -> dict`` and ``load_state(dict)`` for resume."""

    steps_per_epoch: int

    def epoch(self, epoch: int, first: int, dist: Distributed) -> Iterator[Any]: ...


class StepClock:
    """Wall time of a process's steps after its first (which also starts the DataLoader workers and warms up), and the
    part of it spent waiting for the next batch: the per-step cost and data starvation that bench/voc_scale.py reads
    from the stage logs. A run of one step reports that step, warm-up included."""

    def __init__(self) -> None:
        self.steps, self.seconds, self.waiting = 0, 0.0, 0.0
        self.first: tuple[float, float] | None = None  # (waited, took)

    def record(self, waited: float, took: float) -> None:
        if self.first is None:
            self.first = (waited, took)
        else:
            self.steps, self.seconds, self.waiting = self.steps + 1, self.seconds + took, self.waiting + waited

    def report(self, desc: str) -> None:
        steps, seconds, waiting, which = self.steps, self.seconds, self.waiting, "after the first"
        if not steps and self.first is not None:
            (waiting, seconds), steps, which = self.first, 1, "the only one, warm-up included"
        if steps and seconds > 0:
            log.info("%s: %d steps timed (%s): %.3f s a step, %.1f%% of it waiting for data", desc, steps, which,
                     seconds / steps, 100 * waiting / seconds)


def train_loop(step_fn: StepFunction, model: nn.Module, optimizer: torch.optim.Optimizer,
               source: BatchSource, settings: LoopSettings, device: torch.device, dist: Distributed,
               resume: ResumeState, desc: str, lr_factor: Callable[[int, int], float],
               shown: tuple[str, ...] = ("loss",)) -> tuple[list[dict], int]:
    """Run ``settings.epochs`` epochs of ``step_fn(batch, step, total) -> parts`` (forward and backward, gradients
    averaged over processes; the loop zeroes them and steps the optimizer), batches from ``source``.

    The optimizer's groups carry ``initial_lr``; each step sets ``lr = initial_lr * lr_factor(step, total)``.
    Returns the per-epoch means of the loss parts (over processes too) and the number of steps.
    """
    steps_per_epoch = source.steps_per_epoch
    total = settings.epochs * steps_per_epoch
    step, history, sums = 0, [], {}
    state = resume.load()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history, sums = state["step"], list(state["history"]), dict(state.get("epoch_sums", {}))
        if hasattr(source, "load_state"):
            source.load_state(state["source"])
        restore_rng(state.get("rng"))
        log.info("%s: resuming at step %d of %d from %s", desc, step, total, resume.path)
    clock = StepClock()
    with _Terminated() as terminated:
        while step < total:
            epoch, first = divmod(step, steps_per_epoch)
            bar = tqdm(source.epoch(epoch, first, dist), total=steps_per_epoch, initial=first,
                       desc=f"{desc} epoch {epoch + 1}/{settings.epochs}", unit="batch", mininterval=2.0,
                       disable=not dist.is_main)
            asked = time.perf_counter()
            for batch in bar:
                got = time.perf_counter()
                for group in optimizer.param_groups:
                    group["lr"] = group["initial_lr"] * lr_factor(step, total)
                optimizer.zero_grad(set_to_none=True)
                parts = step_fn(to_device(batch, device), step, total)
                optimizer.step()
                step += 1
                done = time.perf_counter()
                clock.record(got - asked, done - asked)
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
                    resume.save(model, optimizer, step, history, sums,
                                source.state() if hasattr(source, "state") else None)
                if stop:
                    dist.barrier()
                    log.warning("%s: SIGTERM at step %d; resume checkpoint %s", desc, step, resume.path)
                    raise SystemExit(TERMINATED_EXIT_CODE)
                asked = time.perf_counter()
            bar.close()
    clock.report(desc)
    return history, step
