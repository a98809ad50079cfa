"""Losses of a segmentation network trained on pseudo masks alone (``train_deeplab``).

Label maps follow the mask convention: 0 = background, 1..C = classes, 255 = ignore (pixels no refiner was sure of).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clims_core.checks import require_one_of
from clims_core.io.masks import IGNORE_INDEX

PSEUDO_MASK_LOSSES = ("ce", "balanced")


def pseudo_mask_loss(logits: torch.Tensor, target: torch.Tensor, kind: str = "ce") -> torch.Tensor:
    """Cross-entropy over the labelled pixels (``ce``, DeepLab's), or its class-balanced form (``balanced``): the mean
    over the classes present in the batch of each class's mean pixel loss, so background, which covers most pixels of
    pseudo masks, does not outweigh the objects. 0 (with a gradient) when no pixel is labelled."""
    require_one_of("pseudo-mask loss", kind, PSEUDO_MASK_LOSSES)
    per_pixel = F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX, reduction="none")
    labelled = target != IGNORE_INDEX
    if not labelled.any():
        return logits.sum() * 0.0
    if kind == "ce":
        return per_pixel[labelled].mean()
    classes = target[labelled].unique()
    return torch.stack([per_pixel[target == c].mean() for c in classes]).mean()
