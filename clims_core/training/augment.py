"""Batch augmentations on tensors (no per-image Python work in the training loop)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip a random half of the batch horizontally."""
    flip = torch.rand(images.shape[0], generator=generator, device="cpu") < 0.5
    out = images.clone()
    out[flip] = out[flip].flip(-1)
    return out


def random_soft_masks(
    n: int, size: int, generator: torch.Generator, masked_area: float = 0.25, sharpness: float = 12.0
) -> torch.Tensor:
    """Smooth random blob masks ``n x 1 x size x size`` in [0, 1] that hide about ``masked_area`` of each image.

    They imitate what CLIMS feeds CLIP (images multiplied by soft CAMs), so the pretrained CLIP stays reliable on
    masked inputs.
    """
    noise = torch.rand(n, 1, 4, 4, generator=generator)
    field = F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False)
    level = torch.quantile(field.flatten(1), masked_area, dim=1).view(n, 1, 1, 1)
    return torch.sigmoid(sharpness * (field - level) / field.flatten(1).std(dim=1).clamp_min(1e-6).view(n, 1, 1, 1))


def mask_some(images01: torch.Tensor, probability: float, generator: torch.Generator, masked_area: float = 0.25) -> torch.Tensor:
    """Multiply a random ``probability`` share of the batch by soft blob masks (pixel space, [0, 1])."""
    chosen = torch.rand(images01.shape[0], generator=generator) < probability
    if not chosen.any():
        return images01
    out = images01.clone()
    masks = random_soft_masks(int(chosen.sum()), images01.shape[-1], generator, masked_area).to(images01.device)
    out[chosen] = out[chosen] * masks
    return out
