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
# How scores are clamped before the logs. "both": into [EPS, 1 - EPS] (the later public code's SimMaxLoss and
# SimMinLoss). "log_domain": only where a log would be undefined, i.e. OTM's score from below and BTM's/CBS's from
# above. The CVPR code clamps nothing: its OTM -log(s) is NaN for a cosine s < 0 and inf at 0, which is a bug, not a
# behaviour worth reproducing, so OTM keeps its lower clamp; its -log(1 - s) is finite for s <= 0 (negative, still
# pulling s down), so BTM and CBS take such scores as the CVPR code does.
SCORE_CLAMPS = ("both", "log_domain")


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    return (values * weights).mean() if weights is not None else values.mean()


def _clamped(score: torch.Tensor, clamp: str, low: bool) -> torch.Tensor:
    """``score`` clamped for a log: both sides (``both``), or OTM's low / BTM's and CBS's high side (``log_domain``)."""
    if clamp == "both":
        return score.clamp(EPS, 1 - EPS)
    if clamp != "log_domain":
        raise ValueError(f"clamp: expected one of {SCORE_CLAMPS}, got {clamp!r}")
    return score.clamp_min(EPS) if low else score.clamp_max(1 - EPS)


def object_text_matching(score: torch.Tensor, weights: torch.Tensor | None = None, clamp: str = "both") -> torch.Tensor:
    """OTM: ``-log(score)`` of foreground images against their class text (score clamped, see ``SCORE_CLAMPS``)."""
    return _weighted_mean(-torch.log(_clamped(score, clamp, low=True)), weights)


def background_text_matching(score: torch.Tensor, weights: torch.Tensor | None = None,
                             clamp: str = "both") -> torch.Tensor:
    """BTM: ``-log(1 - score)`` of background images against their class text."""
    return _weighted_mean(-torch.log(1 - _clamped(score, clamp, low=False)), weights)


def background_suppression(
    score: torch.Tensor,
    applies: torch.Tensor,
    threshold: float | None = None,
    reduction: str = "mean",
    clamp: str = "both",
) -> torch.Tensor:
    """CBS: ``-log(1 - score)`` of foreground images against background words.

    ``score`` and ``applies`` are P x B (positives x background words); ``applies`` says which words count for each
    positive (all of them for a global list, the class's co-occurring words for per-class lists). With ``threshold``
    (the later public code: 0.26) only scores above it count; without (the CVPR code) every score counts, a cosine
    <= 0 too. ``reduction``: ``mean`` over counted pairs, ``sum`` over
    them (the later public code; its weight then grows with the batch), ``sum_mean``: per positive the mean over its
    words, summed over positives (the CVPR code), or ``any_word`` (softmax scores, this project's): per positive
    ``-log(1 - the sum of its words' probabilities)``, averaged over positives.
    """
    counted = applies.to(score.dtype)
    if threshold is not None:
        counted = counted * (score > threshold).to(score.dtype)
    if reduction == "any_word":
        # Softmax scores only: the probability that the object's image reads as any of its stuff words, so a flood
        # onto one stuff costs the same however many other words the list holds (``mean`` divides it by their number).
        any_stuff = (score * counted).sum(dim=1)
        return -torch.log(1 - _clamped(any_stuff, clamp, low=False)).mean() if len(any_stuff) else score.new_zeros(())
    losses = -torch.log(1 - _clamped(score, clamp, low=False)) * counted
    if reduction == "sum":
        return losses.sum()
    if reduction == "sum_mean":
        return (losses.sum(dim=1) / applies.to(score.dtype).sum(dim=1).clamp_min(1.0)).sum()
    if reduction != "mean":
        raise ValueError(f"reduction: expected mean, sum, sum_mean or any_word, got {reduction!r}")
    return losses.sum() / counted.sum().clamp_min(1.0)


def area_regularization(maps: torch.Tensor) -> torch.Tensor:
    """REG: mean activation of the foreground maps."""
    return maps.mean()


def prompt_probabilities(similarity: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """Softmax over the prompt set (columns) at CLIP's logit scale: the ``softmax`` score of each word."""
    return torch.softmax(logit_scale * similarity, dim=-1)
