"""The plain CAM method (IRNet's baseline): multi-label soft-margin loss on globally pooled class scores.

Every CAM method module (``cam``, ``puzzlecam``, ``clims``) has ``make_objective``; ``stages.train_cam`` imports the
configured one by name, so a method's code is in the rerun trigger of its own training only (issue 18).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from clims_core.losses.cam import multilabel_loss
from clims_core.models.cam_net import CamNet


class CamObjective(nn.Module):
    """The loss of one batch. Each method's objective is a module holding the network, so DDP wraps one forward that
    computes the whole loss."""

    def __init__(self, model: CamNet):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, labels: torch.Tensor, step: int, total: int) -> tuple[torch.Tensor, dict]:
        loss = multilabel_loss(self.model(images), labels)
        return loss, {"cls": loss.item()}


def make_objective(model: CamNet, settings: Any, classes: list[str], device: torch.device,
                   init_checkpoint: str | Path | None, clip: tuple[str | None, str | None] | None) -> CamObjective:
    return CamObjective(model)
