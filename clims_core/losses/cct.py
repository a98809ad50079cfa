"""CCT's losses (Ouali et al., CVPR 2020): supervised cross-entropy (optionally annealed-bootstrapped), the
consistency between auxiliary decoders and the main decoder, the weak-label loss, and their ramp-up.

Label maps follow the mask convention: 0 = background, 1..C = classes, 255 = ignore.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from clims_core.io.masks import IGNORE_INDEX


def sigmoid_rampup(current: float, length: float) -> float:
    """Laine & Aila's ramp ``exp(-5 (1 - t)^2)``, ``t = current / length`` clipped to [0, 1]; 1 when ``length`` is 0."""
    if length <= 0:
        return 1.0
    t = min(max(current, 0.0), length) / length
    return math.exp(-5.0 * (1.0 - t) ** 2)


def log_rampup(current: float, length: float) -> float:
    """``1 - exp(-5 t)``, ``t = current / length`` clipped to [0, 1]: the annealed bootstrapped CE's threshold ramp."""
    if length <= 0:
        return 1.0
    t = min(max(current, 0.0), length) / length
    return 1.0 - math.exp(-5.0 * t)


def rampup_weight(step: int, total: int, final: float, rampup: float = 0.1) -> float:
    """CCT's unsupervised weight: ``final`` times a sigmoid ramp over the first ``rampup`` share of training steps.

    CCT counts the ramp in whole epochs (``int(0.1 * epochs)``), which is 0, i.e. no ramp, below 10 epochs; counting
    steps gives the same ramp at 80 epochs and a ramp at all in short runs.
    """
    return final * sigmoid_rampup(step, rampup * total)


def supervised_ce(logits: torch.Tensor, target: torch.Tensor, temperature: float = 1.0,
                  ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Pixel-wise cross-entropy over ``N x C x H x W`` logits and ``N x H x W`` labels, ``ignore_index`` left out.
    A batch with no labelled pixel gives 0 (not NaN), so a crop that landed on padding cannot poison a step."""
    if not (target != ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits / temperature, target, ignore_index=ignore_index)


def abce_threshold(step: int, total: int, n_classes: int, end: float = 0.9, ramp_share: float = 0.4) -> float:
    """The annealed bootstrapped CE's probability threshold: from ``1 / n_classes`` to ``end`` with a log ramp over the
    first ``ramp_share`` of training (CCT: ``(epochs - 0.6 epochs)`` epochs)."""
    start = 1.0 / n_classes
    return start + (end - start) * log_rampup(step, ramp_share * total)


def bootstrapped_ce(logits: torch.Tensor, target: torch.Tensor, threshold: float, min_kept: int = 1,
                    ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Cross-entropy over the pixels whose probability of the true class is below ``threshold`` (the hard ones).

    As CCT's ``abCE_loss``: the threshold is raised to the probability of the ``min_kept * N``-th easiest-to-miss
    pixel when fewer pixels would be kept, so a batch always keeps at least that many.
    """
    valid = target != ignore_index
    if not valid.any():
        return logits.sum() * 0.0
    losses = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")[valid]
    with torch.no_grad():
        probs = F.softmax(logits.float(), dim=1).gather(1, target.clamp_max(logits.shape[1] - 1).unsqueeze(1))
        probs = probs.squeeze(1)[valid]
        ordered = probs.sort().values
        floor = ordered[min(min_kept * target.shape[0], ordered.numel() - 1)]
        keep = probs < max(float(floor), threshold)
    return losses[keep].mean() if keep.any() else losses.sum() * 0.0


def softmax_mse(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """CCT's consistency: mean squared error between the softmax of an auxiliary decoder's logits and the main
    decoder's (detached) probabilities, averaged over every element."""
    if target_probs.requires_grad:
        raise ValueError("the consistency target must be detached (the main prediction is a fixed target)")
    return F.mse_loss(F.softmax(logits, dim=1), target_probs)


def weak_ce(logits: torch.Tensor, pseudo: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Cross-entropy of an auxiliary decoder against pseudo masks (CCT's weakly-labelled mode), 255 ignored."""
    return supervised_ce(logits, pseudo, ignore_index=ignore_index)
