"""Stage ``crf_plane``: the CRF masks' background plane chosen by the CRF masks themselves (``refine.crf.bg_thres:
search``).

``auto`` takes the CAMs' best threshold (eval_cams): where *thresholded CAMs* best match the labels. The CRF then moves
every boundary onto the image's edges, so the plane that gives the best *CRF masks* can lie elsewhere: on the demo
world both methods' CAMs are best at 0.5 and their CRF masks at 0.4 (CLIMS 69.8 -> 75.1 mIoU; DeepLab on them 61.1 ->
73.6). This stage runs the CRF at each plane of ``planes`` on (up to ``images`` of) the pixel-labeled train split,
counts one confusion matrix per plane and writes, per plane, the masks' mIoU and foreground share (the labels' share
beside it) and the best plane (ties: the lowest), which crf_masks then uses for every image. An option, not the
default: on held-out images of the world study's tune worlds it did not beat ``auto`` (README "Pseudo masks";
``bench/crf_plane_holdout.py``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clims_core.checks import require_one_of, require_open_unit
from clims_core.data.manifest import Manifest
from clims_core.io.atomic import write_json
from clims_core.io.cam_store import CamStore
from clims_core.metrics.results import load_ground_truth, percent
from clims_core.metrics.segmentation import DEFAULT_THRESHOLDS, confusion, scores_from_confusion
from clims_core.refine.crf import UNARIES, CrfSettings, crf_mask
from clims_core.refine.per_image import check_store_covers, image_and_cams, run_per_image

log = logging.getLogger(__name__)
DEFAULT_PLANES = DEFAULT_THRESHOLDS  # 0.05 .. 0.95, as eval_cams sweeps


@dataclass(frozen=True)
class CrfPlaneSettings:
    planes: tuple[float, ...] = DEFAULT_PLANES
    images: int = 200  # at most this many of the split's images, evenly spaced (VOC's train split has 1,464)
    split: str = "train"  # the pixel-labeled train split
    unary: str = "labels"
    crf: CrfSettings = field(default_factory=CrfSettings)
    processes: int = 1

    def __post_init__(self) -> None:
        if not self.planes:
            raise ValueError("refine.crf.search_planes: expected at least one plane")
        for plane in self.planes:
            require_open_unit("refine.crf.search_planes", plane)
        if self.images < 1:
            raise ValueError(f"refine.crf.search_images: expected >= 1, got {self.images}")
        require_one_of("refine.crf.unary", self.unary, UNARIES)


def evenly_spaced(items: list[Any], n: int) -> list[Any]:
    """At most ``n`` of ``items``, every k-th from the first (the whole list when it is short enough)."""
    return items[::max(1, math.ceil(len(items) / n))]


@dataclass(frozen=True)
class PlaneCounter:
    """One image's CRF masks at every plane, counted against its labels: a (planes, C, C) confusion stack."""

    manifest: Manifest
    store: CamStore
    items: dict[str, dict[str, Any]]
    labels: dict[str, np.ndarray]
    settings: CrfPlaneSettings

    def __call__(self, image_id: str) -> np.ndarray:
        image, keys, cams = image_and_cams(self.manifest, self.store, image_id, self.labels[image_id])
        gt = load_ground_truth(self.manifest, self.items[image_id], self.settings.split)
        n_classes = len(self.manifest.classes) + 1
        return np.stack([confusion(crf_mask(image, cams, keys, plane, self.settings.crf, self.settings.unary), gt,
                                   n_classes) for plane in self.settings.planes])


def summarize(counts: np.ndarray, planes: tuple[float, ...]) -> dict[str, Any]:
    """Per plane the masks' mIoU and foreground share, the labels' share and the best plane (ties: the lowest)."""
    curve = [scores_from_confusion(conf)["miou"] for conf in counts]
    best = int(np.nanargmax(curve)) if not np.all(np.isnan(curve)) else 0
    pixels = counts[0].sum()
    return {"planes": [float(p) for p in planes], "miou_per_plane": [percent(m) for m in curve],
            "foreground_share_per_plane": [float(1 - conf[:, 0].sum() / pixels) for conf in counts],
            "label_foreground_share": float(1 - counts[0][0].sum() / pixels),
            "best_plane": float(planes[best]), "miou": percent(curve[best])}


def run(settings: CrfPlaneSettings, manifest_path: str | Path, store_path: str | Path, out_json: str | Path,
        method: str | None = None) -> dict[str, Any]:
    """Search the plane on the split's images (checked to have CAMs first) and write the JSON."""
    start = time.perf_counter()
    manifest = Manifest.load(manifest_path)
    if settings.split not in manifest.splits:
        raise ValueError(f"crf_plane: split {settings.split!r} is not in the manifest (splits: "
                         f"{list(manifest.splits)}); refine.crf.bg_thres search needs a pixel-labeled train split")
    items = evenly_spaced(manifest.splits[settings.split], settings.images)
    ids = [item["id"] for item in items]
    with CamStore(store_path) as store:
        check_store_covers(store, ids, settings.split)
        provenance = {key: store.attrs[key] for key in ("config_hash", "checkpoint_sha256")}
    labels = dict(zip(manifest.ids(settings.split), manifest.labels(settings.split)))
    n_classes = len(manifest.classes) + 1
    counter = PlaneCounter(manifest, CamStore(store_path), {item["id"]: item for item in items}, labels, settings)
    counts = run_per_image(counter, ids, settings.processes, "crf_plane",
                           total=np.zeros((len(settings.planes), n_classes, n_classes), dtype=np.int64), add=np.add)
    result = {"method": method, "split": settings.split, "images": len(ids), "unary": settings.unary,
              **summarize(counts, settings.planes), "cam_store": provenance,
              "seconds": round(time.perf_counter() - start, 1)}
    write_json(out_json, result)
    log.info("crf_plane: best plane %g (mIoU %.1f, foreground %.1f%% vs labels %.1f%%) over %d planes x %d images "
             "in %.1f s", result["best_plane"], result["miou"] or float("nan"),
             100 * result["foreground_share_per_plane"][settings.planes.index(result["best_plane"])],
             100 * result["label_foreground_share"], len(settings.planes), len(ids), result["seconds"])
    return result
