"""How a training runs, as opposed to what it learns: the fields every trainer's settings share.

Each trainer's settings (``CamTrainSettings``, ``IrnTrainSettings``, ``SegTrainSettings``, ``DeepLabTrainSettings``,
``PretrainTrunkSettings``) inherits :class:`TrainingRuntime`, so each of these defaults lives here once, and
:func:`runtime_arguments` is the one place a rule's plain arguments become them. The fields are keyword-only: a
trainer's own fields keep their positions, and no call can pass a seed where a device was meant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from clims_core.device import memory_format
from clims_core.io.atomic import write_json
from clims_core.training import distributed
from clims_core.training.loop import ResumeState


@dataclass(frozen=True, kw_only=True)
class TrainingRuntime:
    """Where and how fast a training runs and how often it saves; of these only ``seed`` changes what it learns."""

    seed: int = 0
    device: str = "auto"  # see clims_core.device.pick_device
    precision: str = "auto"  # see clims_core.device.autocast
    threads: int = 1  # torch threads of each process
    workers: int = 0  # data-loader processes (a config section's ``workers``)
    checkpoint_every: int = 50  # steps between resume checkpoints in the work folder (0: only on SIGTERM)

    def start(self) -> tuple[distributed.Distributed, torch.device]:
        """This process's place in the ``torchrun`` job (if any) and its device, with torch seeded by ``seed``."""
        dist, device = distributed.start(self.device, self.threads)
        torch.manual_seed(self.seed)
        return dist, device


def ready_to_train(model: nn.Module, dist: distributed.Distributed, device: torch.device) -> nn.Module:
    """``model`` in train mode on ``device`` (channels-last where that is faster), BatchNorm synced over processes on
    CUDA; call before the optimizer is built."""
    return dist.prepare(model.to(device, memory_format=memory_format(device)).train(), device)


RUNTIME_KEYS = tuple(f.name for f in fields(TrainingRuntime))


def runtime_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The runtime fields among a rule's plain arguments (absent ones take :class:`TrainingRuntime`'s defaults)."""
    return {key: arguments[key] for key in RUNTIME_KEYS if key in arguments}


def finish_training(dist: distributed.Distributed, resume: ResumeState, save_outputs: Callable[[], None],
                    metrics_path: str | Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """The main process writes the stage's outputs (``save_outputs``), then the metrics JSON, then drops the resume
    checkpoint (so a kill in between resumes, never retrains); every process then leaves the ``torchrun`` group."""
    if dist.is_main:
        save_outputs()
        write_json(metrics_path, metrics)
        resume.clear()
    dist.finish()
    return metrics
