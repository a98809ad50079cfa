"""Stage ``crf_masks``: the cheap refiner, denseCRF directly on the CAMs (no IRNet).

Each image's CAMs are thresholded at ``bg_thres`` (a constant background plane, argmax) and snapped to the image by
denseCRF with the IR-label stage's settings (:func:`clims_core.refine.crf.crf_mask`; ``unary: scores`` uses the CAMs
as probabilities instead of the thresholded labels). Masks go to a mask folder like the IRN masks, in a pool of
``processes`` worker processes, shardable the same way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clims_core.data.manifest import Manifest
from clims_core.io.cam_store import CamStore
from clims_core.io.masks import save_mask
from clims_core.refine.crf import CrfSettings, crf_mask
from clims_core.refine.mask_folder import mask_relpath, mask_stats
from clims_core.refine.per_image import image_and_cams, open_shard, run_per_image, write_shard_index

log = logging.getLogger(__name__)
UNARIES = ("labels", "scores")


@dataclass(frozen=True)
class CrfMaskSettings:
    split: str = "train_aug"
    bg_thres: float = 0.3
    unary: str = "labels"
    crf: CrfSettings = field(default_factory=CrfSettings)
    shard: int = 0
    shards: int = 1
    processes: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.shard < self.shards:
            raise ValueError(f"shard {self.shard} outside 0..{self.shards - 1}")
        if not 0 < self.bg_thres < 1:
            raise ValueError(f"refine.crf.bg_thres: expected a number in (0, 1), got {self.bg_thres}")
        if self.unary not in UNARIES:
            raise ValueError(f"refine.crf.unary: expected one of {UNARIES}, got {self.unary!r}")

    def section(self) -> dict[str, Any]:
        return {"split": self.split, "bg_thres": self.bg_thres, "unary": self.unary, "crf": asdict(self.crf)}


@dataclass(frozen=True)
class _CrfMaskJob:
    manifest: Manifest
    store: CamStore
    folder: Path
    labels: dict[str, np.ndarray]
    settings: CrfMaskSettings

    def __call__(self, image_id: str) -> dict[str, int]:
        image, keys, cams = image_and_cams(self.manifest, self.store, image_id, self.labels[image_id])
        mask = crf_mask(image, cams, keys, self.settings.bg_thres, self.settings.crf, self.settings.unary)
        save_mask(self.folder / mask_relpath(image_id), mask)
        return mask_stats(mask)


def run(settings: CrfMaskSettings, manifest_path: str | Path, store_path: str | Path, folder: str | Path,
        index_path: str | Path, method: str | None = None) -> dict[str, Any]:
    """CRF masks of the split's images (this shard's) into ``folder``; the index (or the shard's part) last."""
    start = time.perf_counter()
    inputs = open_shard(manifest_path, store_path, settings.split, settings.shard, settings.shards)
    job = _CrfMaskJob(inputs.manifest, CamStore(store_path), Path(folder), inputs.labels, settings)
    stats = run_per_image(job, inputs.ids, settings.processes, f"crf_masks[{settings.shard + 1}/{settings.shards}]")
    write_shard_index(inputs, stats, index_path, settings.section(), kind="pseudo_masks", refiner="crf",
                      method=method)
    seconds = time.perf_counter() - start
    log.info("%d CRF masks in %.1f s (%.1f img/s)", len(inputs.ids), seconds, len(inputs.ids) / max(seconds, 1e-9))
    return {"images": len(inputs.ids), "seconds": seconds, "stats": stats}
