"""Losses of the CAM baselines: multi-label classification (IRNet's CAM) and PuzzleCAM's tile objective."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multilabel_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Multi-label soft-margin loss (IRNet's ``F.multilabel_soft_margin_loss``)."""
    return F.multilabel_soft_margin_loss(logits, labels)


def tile(images: torch.Tensor, pieces: int = 4) -> torch.Tensor:
    """Cut each image into a 2x2 grid (PuzzleCAM's 4 pieces): N x C x H x W -> 4N x C x H/2 x W/2, tiles grouped by
    position (all top-left tiles first), as PuzzleCAM's ``tile_features``."""
    if pieces != 4:
        raise ValueError("PuzzleCAM here uses 4 pieces (a 2x2 grid)")
    h, w = images.shape[-2] // 2, images.shape[-1] // 2
    return torch.cat([images[..., :h, :w], images[..., :h, w:2 * w], images[..., h:2 * h, :w], images[..., h:2 * h, w:2 * w]])


def merge(tiles: torch.Tensor, batch: int) -> torch.Tensor:
    """Inverse of :func:`tile` on feature maps: 4N x C x h x w -> N x C x 2h x 2w."""
    tl, tr, bl, br = tiles.split(batch)
    return torch.cat([torch.cat([tl, tr], dim=-1), torch.cat([bl, br], dim=-1)], dim=-2)


def puzzle_reconstruction_loss(full_maps: torch.Tensor, merged_maps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L1 between the full image's class maps and the merged tiles' maps, on the image's labelled classes only
    (PuzzleCAM's 'masking' option); the maps are cropped to a common size."""
    h = min(full_maps.shape[-2], merged_maps.shape[-2])
    w = min(full_maps.shape[-1], merged_maps.shape[-1])
    diff = (full_maps[..., :h, :w] - merged_maps[..., :h, :w]).abs()
    return (diff * labels[:, :, None, None]).mean()


def normalised_cams(maps: torch.Tensor) -> torch.Tensor:
    """ReLU, then each map (last two dims) divided by its max + 1e-5: IRNet's CAM normalisation and PuzzleCAM's
    ``make_cam`` (the reconstruction's 'cam' level)."""
    maps = torch.relu(maps)
    return maps / (maps.flatten(-2).max(dim=-1).values[..., None, None] + 1e-5)


def puzzle_alpha(step: int, total: int, alpha: float = 4.0, schedule: float = 0.5) -> float:
    """PuzzleCAM's weight of the reconstruction loss: linear from 0 to ``alpha`` over the first ``schedule`` of training."""
    return min(alpha * step / (total * schedule), alpha)
