"""CLIMS's four losses (Xie et al., CVPR 2022, Sec. 3), on CLIP scores of masked images.

For each positive (image, class c) with activation map M in [0, 1] and image X in pixel space:
- object-text matching (OTM): the foreground image M * X should match class c's text;
- background-text matching (BTM): the background image (1 - M) * X should not match class c's text;
- co-occurring background suppression (CBS): M * X should not match background words (railroad for train);
- area regularisation (REG): the maps stay small, so they cannot cover the whole image to satisfy OTM.

Scores are either raw cosine similarities (``cosine``, the paper and its code: ``-log(s)`` and ``-log(1 - s)`` on s in
(0, 1), tuned for OpenAI CLIP whose similarities sit near 0.2-0.35) or probabilities from a softmax over the whole
prompt set at CLIP's own logit scale (``softmax``: scale-free, so the same weights work for a small CLIP whose
cosine range differs). See README "CLIMS on a small CLIP".
"""

from __future__ import annotations

import torch

EPS = 1e-4


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    return (values * weights).mean() if weights is not None else values.mean()


def object_text_matching(score: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """OTM: ``-log(score)`` of foreground images against their class text (score clamped to (0, 1))."""
    return _weighted_mean(-torch.log(score.clamp(EPS, 1 - EPS)), weights)


def background_text_matching(score: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """BTM: ``-log(1 - score)`` of background images against their class text."""
    return _weighted_mean(-torch.log(1 - score.clamp(EPS, 1 - EPS)), weights)


def background_suppression(
    score: torch.Tensor,
    applies: torch.Tensor,
    threshold: float | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """CBS: ``-log(1 - score)`` of foreground images against background words.

    ``score`` and ``applies`` are P x B (positives x background words); ``applies`` says which words count for each
    positive (all of them for a global list, the class's co-occurring words for per-class lists). With ``threshold``
    (the later public code: 0.26) only scores above it count. ``reduction``: ``mean`` over counted pairs, ``sum`` over
    them (the later public code; its weight then grows with the batch), or ``sum_mean``: per positive the mean over its
    words, summed over positives (the CVPR code).
    """
    counted = applies.to(score.dtype)
    if threshold is not None:
        counted = counted * (score > threshold).to(score.dtype)
    losses = -torch.log(1 - score.clamp(EPS, 1 - EPS)) * counted
    if reduction == "sum":
        return losses.sum()
    if reduction == "sum_mean":
        return (losses.sum(dim=1) / applies.to(score.dtype).sum(dim=1).clamp_min(1.0)).sum()
    if reduction != "mean":
        raise ValueError(f"reduction: expected mean, sum or sum_mean, got {reduction!r}")
    return losses.sum() / counted.sum().clamp_min(1.0)


def area_regularization(maps: torch.Tensor) -> torch.Tensor:
    """REG: mean activation of the foreground maps."""
    return maps.mean()


def prompt_probabilities(similarity: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """Softmax over the prompt set (columns) at CLIP's logit scale: the ``softmax`` score of each word."""
    return torch.softmax(logit_scale * similarity, dim=-1)
