"""Weight-space interpolation of a fine-tuned network with its starting point (WiSE-FT, Wortsman et al., CVPR 2022).

Fine-tuning CLIP on label text teaches it the training images' context ("train" = train on railroad), which costs it
the masked object crops CLIMS shows it. WiSE-FT keeps most of the fine-tuning's gain on the target task and most of the
starting point's robustness by saving ``(1 - alpha) * start + alpha * fine-tuned``: no extra training, one blend.
"""

from __future__ import annotations

import torch
from torch import nn


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the floating-point weights and buffers, taken before training changes them."""
    return {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()
            if value.is_floating_point()}


@torch.no_grad()
def interpolate_(model: nn.Module, start: dict[str, torch.Tensor], alpha: float) -> None:
    """In place: every floating-point tensor of ``model`` becomes ``(1 - alpha) * start + alpha * itself``.

    Integer buffers (counters) keep the fine-tuned value; ``alpha`` 1 leaves the model untouched, 0 restores ``start``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"weight interpolation: expected alpha in [0, 1], got {alpha}")
    if alpha == 1.0:
        return
    state = model.state_dict()
    missing = sorted(set(name for name, value in state.items() if value.is_floating_point()) - set(start))
    if missing:
        raise ValueError(f"weight interpolation: the start snapshot lacks {missing[:3]} (another architecture?)")
    for name, value in state.items():
        if value.is_floating_point():
            value.lerp_(start[name].to(value.device, value.dtype), 1.0 - alpha)
