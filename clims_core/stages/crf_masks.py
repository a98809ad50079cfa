"""Stage ``crf_masks``: the cheap refiner, denseCRF directly on the CAMs (no IRNet).

Each image's CAMs are thresholded at ``bg_thres`` (a constant background plane, argmax) and snapped to the image by
denseCRF with the IR-label stage's settings (:func:`clims_core.refine.crf.crf_mask`; ``unary: scores`` uses the CAMs
as probabilities instead of the thresholded labels). Masks go to a mask folder like the IRN masks, in a pool of
``processes`` worker processes, shardable the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from clims_core.checks import require_one_of, require_open_unit
from clims_core.refine.crf import UNARIES, CrfSettings, crf_mask
from clims_core.refine.per_image import ShardSettings, masks_from_cams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrfMaskSettings(ShardSettings):
    bg_thres: float = 0.3
    unary: str = "labels"
    crf: CrfSettings = field(default_factory=CrfSettings)
    processes: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        require_open_unit("refine.crf.bg_thres", self.bg_thres)
        require_one_of("refine.crf.unary", self.unary, UNARIES)


def run(settings: CrfMaskSettings, manifest_path: str | Path, store_path: str | Path, folder: str | Path,
        index_path: str | Path, method: str | None = None) -> dict[str, Any]:
    """CRF masks of the split's images (this shard's) into ``folder``; the index (or the shard's part) last."""
    to_mask = partial(crf_mask, bg_thres=settings.bg_thres, settings=settings.crf, unary=settings.unary)
    done = masks_from_cams(to_mask, "crf_masks", settings, manifest_path, store_path, folder, index_path,
                           settings.processes, kind="pseudo_masks", refiner="crf", method=method)
    log.info("%d CRF masks in %.1f s (%.1f img/s)", done.images, done.seconds, done.rate)
    return done.summary()
