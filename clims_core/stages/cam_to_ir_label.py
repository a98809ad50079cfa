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
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from clims_core.refine.crf import CrfSettings, ir_label
from clims_core.refine.per_image import ShardSettings, masks_from_cams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IrLabelSettings(ShardSettings):
    fg_thres: float = 0.30  # IRNet conf_fg_thres
    bg_thres: float = 0.05  # IRNet conf_bg_thres (0.10 in the later CLIMS code)
    crf: CrfSettings = field(default_factory=CrfSettings)
    processes: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.bg_thres <= self.fg_thres < 1:
            raise ValueError(f"refine.ir_label: expected 0 < bg_thres <= fg_thres < 1, got bg_thres {self.bg_thres}, "
                             f"fg_thres {self.fg_thres}")


def run(settings: IrLabelSettings, manifest_path: str | Path, store_path: str | Path, folder: str | Path,
        index_path: str | Path, method: str | None = None) -> dict[str, Any]:
    """IR labels of the split's images (this shard's) into ``folder``; writes the index (or the shard's part) last."""
    to_label = partial(ir_label, fg_thres=settings.fg_thres, bg_thres=settings.bg_thres, settings=settings.crf)
    done = masks_from_cams(to_label, "cam_to_ir_label", settings, manifest_path, store_path, folder, index_path,
                           settings.processes, kind="ir_label", method=method)
    pixels = max(done.stats["pixels"], 1)
    log.info("%d IR labels in %.1f s (%.1f img/s): %.1f%% foreground, %.1f%% background, %.1f%% ignored",
             done.images, done.seconds, done.rate, 100 * done.stats["foreground"] / pixels,
             100 * done.stats["background"] / pixels, 100 * done.stats["ignored"] / pixels)
    return done.summary()
