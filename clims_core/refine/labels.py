"""From score planes to mask values: the background threshold and the key lookup every refiner shares."""

from __future__ import annotations

import numpy as np


def threshold_labels(cams: np.ndarray, threshold: float) -> np.ndarray:
    """Index map over ``[background, key 0, key 1, ...]``: a constant background plane at ``threshold``, then argmax
    (ties go to the background, as in IRNet and :func:`clims_core.metrics.segmentation.cams_to_label`)."""
    background = np.full((1, *cams.shape[1:]), threshold, dtype=np.float32)
    return np.concatenate([background, cams.astype(np.float32, copy=False)]).argmax(axis=0)


def key_lookup(keys: np.ndarray) -> np.ndarray:
    """Index over ``[background, keys...]`` -> mask value (0, then ``keys + 1``), as uint8."""
    return np.concatenate([[0], np.asarray(keys, dtype=np.int64) + 1]).astype(np.uint8)
