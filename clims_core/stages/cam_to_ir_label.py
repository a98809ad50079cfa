"""Stage ``cam_to_ir_label``: IRNet's inter-pixel relation labels from the CAM store (IRNet ``step/cam_to_ir_label``).

For every image of the split: confident foreground (CAMs against a background plane at ``fg_thres``) and confident
background (against ``bg_thres``), each snapped to the image by denseCRF; the class where the foreground map has one,
0 where both maps say background, 255 elsewhere (:func:`clims_core.refine.crf.ir_label`). The labels are palette PNGs
in a mask folder (:mod:`clims_core.refine.mask_folder`) that ``train_irn`` reads. Images go to a pool of
``processes`` worker processes; ``shard``/``shards`` split the id list like ``make_cams`` (``ids[shard::shards]``),
each shard writing a part that ``merge_masks`` joins.
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
from clims_core.refine.crf import CrfSettings, ir_label
from clims_core.refine.mask_folder import mask_relpath, mask_stats
from clims_core.refine.per_image import image_and_cams, open_shard, run_per_image, write_shard_index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IrLabelSettings:
    split: str = "train_aug"
    fg_thres: float = 0.30  # IRNet conf_fg_thres
    bg_thres: float = 0.05  # IRNet conf_bg_thres (0.10 in the later CLIMS code)
    crf: CrfSettings = field(default_factory=CrfSettings)
    shard: int = 0
    shards: int = 1
    processes: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.shard < self.shards:
            raise ValueError(f"shard {self.shard} outside 0..{self.shards - 1}")
        if not 0 < self.bg_thres <= self.fg_thres < 1:
            raise ValueError(f"refine.ir_label: expected 0 < bg_thres <= fg_thres < 1, got bg_thres {self.bg_thres}, "
                             f"fg_thres {self.fg_thres}")

    def section(self) -> dict[str, Any]:
        """What the labels depend on (recorded in the index; shard and process counts do not change them)."""
        return {"split": self.split, "fg_thres": self.fg_thres, "bg_thres": self.bg_thres, "crf": asdict(self.crf)}


@dataclass(frozen=True)
class _IrLabelJob:
    """One image -> its IR label PNG (picklable: runs in the pool's workers)."""

    manifest: Manifest
    store: CamStore
    folder: Path
    labels: dict[str, np.ndarray]
    settings: IrLabelSettings

    def __call__(self, image_id: str) -> dict[str, int]:
        image, keys, cams = image_and_cams(self.manifest, self.store, image_id, self.labels[image_id])
        label = ir_label(image, cams, keys, self.settings.fg_thres, self.settings.bg_thres, self.settings.crf)
        save_mask(self.folder / mask_relpath(image_id), label)
        return mask_stats(label)


def run(settings: IrLabelSettings, manifest_path: str | Path, store_path: str | Path, folder: str | Path,
        index_path: str | Path, method: str | None = None) -> dict[str, Any]:
    """IR labels of the split's images (this shard's) into ``folder``; writes the index (or the shard's part) last."""
    start = time.perf_counter()
    inputs = open_shard(manifest_path, store_path, settings.split, settings.shard, settings.shards)
    job = _IrLabelJob(inputs.manifest, CamStore(store_path), Path(folder), inputs.labels, settings)
    stats = run_per_image(job, inputs.ids, settings.processes,
                          f"cam_to_ir_label[{settings.shard + 1}/{settings.shards}]")
    write_shard_index(inputs, stats, index_path, settings.section(), kind="ir_label", method=method)
    seconds = time.perf_counter() - start
    pixels = max(stats["pixels"], 1)
    log.info("%d IR labels in %.1f s (%.1f img/s): %.1f%% foreground, %.1f%% background, %.1f%% ignored",
             len(inputs.ids), seconds, len(inputs.ids) / max(seconds, 1e-9), 100 * stats["foreground"] / pixels,
             100 * stats["background"] / pixels, 100 * stats["ignored"] / pixels)
    return {"images": len(inputs.ids), "seconds": seconds, "stats": stats}
