"""Average precision for multi-label scores (the zero-shot CLIP check)."""

from __future__ import annotations

import numpy as np


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Non-interpolated AP: mean over positives of the precision at their rank (ties broken pessimistically).

    NaN when there is no positive.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positives = np.asarray(positives).astype(bool)
    if not positives.any():
        return float("nan")
    order = np.lexsort((positives, -scores))  # by score desc; among ties, negatives first
    hits = positives[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> tuple[float, list[float]]:
    """mAP over classes (columns) with at least one positive, and the per-class APs (NaN where none)."""
    per_class = [average_precision(scores[:, c], labels[:, c]) for c in range(scores.shape[1])]
    valid = [ap for ap in per_class if not np.isnan(ap)]
    return (float(np.mean(valid)) if valid else float("nan")), per_class
