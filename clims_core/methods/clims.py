"""CLIMS training: initialised from a ``cam`` checkpoint, the network's foreground activation maps scored through a
frozen CLIP (:class:`~clims_core.methods.clims_objective.ClimsObjective`), plus, with ``classification_weight`` > 0,
the plain CAM's classification loss on the same features."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from clims_core.losses.cam import multilabel_loss, normalised_cams
from clims_core.methods.cam import CamObjective
from clims_core.methods.clims_objective import ClimsObjective
from clims_core.methods.clims_settings import ClimsSettings
from clims_core.models.cam_net import CamNet
from clims_core.models.clip import load_clip

log = logging.getLogger(__name__)


class ClimsTraining(CamObjective):
    """The CLIMS loss of one batch, with the classification term when its weight is set."""

    def __init__(self, model: CamNet, objective: ClimsObjective):
        super().__init__(model)
        self.objective = objective

    def forward(self, images: torch.Tensor, labels: torch.Tensor, step: int, total: int) -> tuple[torch.Tensor, dict]:
        features = self.model.features(images)
        scores = self.model.maps_from(features)  # foreground channels; a CVPR head's background channel is unused
        if self.objective.settings.map_activation == "normalised_cam":
            maps = normalised_cams(scores.float())
        else:
            maps = torch.sigmoid(scores)
        loss, parts = self.objective(images, maps.float(), labels)
        weight = self.objective.settings.classification_weight
        if weight:
            cls = multilabel_loss(self.model.logits_from(features), labels)
            loss, parts = loss + weight * cls, {**parts, "cls": cls.item()}
        return loss, parts


def settings_from_config(section: dict) -> ClimsSettings:
    """``cam.clims``, already resolved against its preset, as the objective's settings."""
    return ClimsSettings.from_config(section)


def make_objective(model: CamNet, settings: Any, classes: list[str], device: torch.device,
                   init_checkpoint: str | Path | None, clip: tuple[str | None, str | None] | None) -> CamObjective:
    if init_checkpoint is None or clip is None:
        raise ValueError("clims training needs the cam checkpoint (init_checkpoint) and a CLIP (clip)")
    loaded = load_clip(clip[0], clip[1], device).freeze()
    objective = ClimsObjective(loaded, classes, settings.clims)
    log.info("CLIMS with %s; prompts %s", loaded.source, objective.prompts)
    return ClimsTraining(model, objective)
