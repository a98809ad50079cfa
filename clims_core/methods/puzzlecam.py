"""PuzzleCAM (Jo & Yu, ICIP 2021): the plain CAM's loss on the full image and on its 2x2 tiles merged back, plus an
L1 reconstruction between the full and merged class maps with PuzzleCAM's alpha schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from clims_core.losses.cam import merge, multilabel_loss, normalised_cams, puzzle_alpha, puzzle_reconstruction_loss, tile
from clims_core.methods.cam import CamObjective
from clims_core.models.cam_net import CamNet


class PuzzleCamObjective(CamObjective):
    """Classification of the full image and of its merged tiles, plus the alpha-weighted reconstruction term."""

    def __init__(self, model: CamNet, alpha: float, schedule: float, level: str):
        super().__init__(model)
        self.alpha, self.schedule, self.level = alpha, schedule, level

    def forward(self, images: torch.Tensor, labels: torch.Tensor, step: int, total: int) -> tuple[torch.Tensor, dict]:
        features = self.model.features(images)
        tile_features = self.model.features(tile(images))
        full_maps = self.model.maps_from(features)
        merged_maps = self.model.maps_from(merge(tile_features, images.shape[0]))
        cls = multilabel_loss(self.model.logits_from(features), labels)
        puzzle_cls = multilabel_loss(merged_maps.mean(dim=(2, 3)), labels)
        if self.level == "cam":
            full_maps, merged_maps = normalised_cams(full_maps), normalised_cams(merged_maps)
        reconstruction = puzzle_reconstruction_loss(full_maps, merged_maps, labels)
        alpha = puzzle_alpha(step, total, self.alpha, self.schedule)
        loss = cls + puzzle_cls + alpha * reconstruction
        return loss, {"cls": cls.item(), "pcls": puzzle_cls.item(), "re": reconstruction.item(), "alpha": alpha}


def make_objective(model: CamNet, settings: Any, classes: list[str], device: torch.device,
                   init_checkpoint: str | Path | None, clip: tuple[str | None, str | None] | None) -> CamObjective:
    return PuzzleCamObjective(model, settings.puzzle_alpha, settings.puzzle_schedule, settings.puzzle_level)
