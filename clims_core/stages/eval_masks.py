"""Stage ``eval_masks``: pseudo masks scored against the ground truth of the pixel-labeled train split.

The CAM stage's metrics (:mod:`clims_core.metrics.segmentation`): one confusion matrix over the split, per-class IoU /
precision / recall, mIoU (VOC's convention) and, with stuff masks, each ``eval.confounders`` pair's false-positive
rate (the share of the visible stuff's pixels a mask gives the class). The JSON has ``eval_cams``' shape without the
threshold sweep: a mask is already a decision. Pixels a mask marks 255 (ignore) count as background, as IRNet's
``eval_sem_seg`` does; their share is reported as ``ignored_fraction``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clims_core.data.manifest import Manifest
from clims_core.data.voc import STUFF_DIR
from clims_core.io.atomic import write_json, write_text
from clims_core.io.masks import IGNORE_INDEX
from clims_core.metrics.results import (confounder_pairs, fraction, load_ground_truth, load_stuff_mask, percent,
                                        sum_over_images, tsv_cell)
from clims_core.metrics.segmentation import confusion, scores_from_confusion
from clims_core.refine.mask_folder import MaskFolder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalMasksSettings:
    split: str = "train"
    confounders: dict[str, str] = field(default_factory=dict)  # class -> stuff, from eval.confounders
    threads: int = 1


@dataclass
class _Counts:
    """Additive over images: the confusion matrix, ignored predictions, confounder hits and pixels per pair."""

    confusion: np.ndarray
    ignored: int
    hits: np.ndarray
    pixels: np.ndarray

    def add(self, other: "_Counts") -> None:
        self.confusion += other.confusion
        self.ignored += other.ignored
        self.hits += other.hits
        self.pixels += other.pixels


class _ImageCounter:
    def __init__(self, manifest: Manifest, masks: MaskFolder, pairs: list[tuple[int, int]], stuff_dir: Path | None):
        self.manifest, self.masks, self.pairs, self.stuff_dir = manifest, masks, pairs, stuff_dir
        self.n_classes = len(manifest.classes) + 1

    def __call__(self, item: dict[str, Any]) -> _Counts:
        image_id = item["id"]
        gt = load_ground_truth(self.manifest, item, self.masks.split)
        pred = self.masks.load_mask(image_id)
        if pred.shape != gt.shape:
            raise ValueError(f"{self.masks.mask_path(image_id)}: mask is {pred.shape[0]} x {pred.shape[1]} px, the "
                             f"ground truth {item['mask']} is {gt.shape[0]} x {gt.shape[1]}")
        ignored = pred == IGNORE_INDEX
        if (pred[~ignored] >= self.n_classes).any():
            raise ValueError(f"{self.masks.mask_path(image_id)}: values beyond the {self.n_classes - 1} classes "
                             f"(expected 0..{self.n_classes - 1} or {IGNORE_INDEX})")
        pred = np.where(ignored, 0, pred)
        counts = _Counts(confusion(pred, gt, self.n_classes), int((ignored & (gt != IGNORE_INDEX)).sum()),
                         np.zeros(len(self.pairs), dtype=np.int64), np.zeros(len(self.pairs), dtype=np.int64))
        if self.stuff_dir is not None:
            stuff = load_stuff_mask(self.stuff_dir, image_id)
            labelled = set((np.flatnonzero(item["labels"]) + 1).tolist())
            for p, (cls, stuff_id) in enumerate(self.pairs):
                if cls in labelled:
                    region = (stuff == stuff_id) & (gt == 0)
                    counts.pixels[p] = int(region.sum())
                    counts.hits[p] = int((region & (pred == cls)).sum())
        return counts


def evaluate(settings: EvalMasksSettings, manifest: Manifest, masks: MaskFolder) -> tuple[_Counts, bool]:
    if settings.split not in manifest.splits:
        raise ValueError(f"eval_masks: split {settings.split!r} is not in the manifest "
                         f"(splits: {list(manifest.splits)})")
    items = manifest.splits[settings.split]
    listed = set(masks.ids)
    missing = [item["id"] for item in items if item["id"] not in listed]
    if missing:
        raise ValueError(f"{masks.root}: {len(missing)} of {len(items)} images of split {settings.split} have no "
                         f"mask, e.g. {missing[:5]} (the folder holds split {masks.split})")
    pairs = confounder_pairs(manifest, settings.confounders)
    stuff_dir = manifest.root / STUFF_DIR
    use_stuff = bool(pairs) and stuff_dir.is_dir()
    counter = _ImageCounter(manifest, masks, pairs if use_stuff else [], stuff_dir if use_stuff else None)
    n = counter.n_classes
    p = len(counter.pairs)
    total = _Counts(np.zeros((n, n), dtype=np.int64), 0, np.zeros(p, dtype=np.int64), np.zeros(p, dtype=np.int64))
    return sum_over_images(counter, items, total, settings.threads, "eval_masks"), use_stuff


def summarize(counts: _Counts, manifest: Manifest, pairs: list[tuple[int, int]]) -> dict[str, Any]:
    scores = scores_from_confusion(counts.confusion)
    names = ["background", *manifest.classes]
    result: dict[str, Any] = {
        "miou": percent(scores["miou"]),
        "per_class": {name: {key: percent(scores[key][i]) for key in ("iou", "precision", "recall")}
                      for i, name in enumerate(names)},
        "ignored_fraction": fraction(counts.ignored / max(int(counts.confusion.sum()), 1)),
    }
    if pairs:
        keys = [f"{manifest.classes[c - 1]}/{manifest.stuff_classes[s - 1]}" for c, s in pairs]
        with np.errstate(divide="ignore", invalid="ignore"):
            rates = np.where(counts.pixels > 0, counts.hits / counts.pixels, np.nan)
        result["confounder_fp"] = {key: {"rate": fraction(rates[i]), "pixels": int(counts.pixels[i])}
                                   for i, key in enumerate(keys)}
    return result


def to_tsv(result: dict[str, Any]) -> str:
    """One ``method  refiner  metric  value`` row per figure (percent for IoU/precision/recall/mIoU)."""
    rows = [("images", result["images"]), ("miou", result["miou"]), ("ignored_fraction", result["ignored_fraction"])]
    for name, scores in result["per_class"].items():
        rows += [(f"{key}.{name}", value) for key, value in scores.items()]
    for pair, entry in result.get("confounder_fp", {}).items():
        rows += [(f"confounder_fp.{pair}", entry["rate"]), (f"confounder_pixels.{pair}", entry["pixels"])]
    lines = ["method\trefiner\tmetric\tvalue"]
    lines += [f"{result['method']}\t{result['refiner']}\t{metric}\t{tsv_cell(value)}" for metric, value in rows]
    return "\n".join(lines) + "\n"


def run(settings: EvalMasksSettings, manifest_path: str | Path, index_path: str | Path, json_path: str | Path,
        tsv_path: str | Path, method: str, refiner: str) -> dict[str, Any]:
    """Score one mask folder on ``settings.split``; write JSON and TSV; return the JSON's dict."""
    manifest = Manifest.load(manifest_path)
    masks = MaskFolder.load(index_path)
    if masks.classes != manifest.classes:
        raise ValueError(f"{index_path}: masks of classes {masks.classes}, the manifest has {manifest.classes}")
    counts, used_stuff = evaluate(settings, manifest, masks)
    pairs = confounder_pairs(manifest, settings.confounders) if used_stuff else []
    provenance = {key: masks.index[key] for key in ("config", "cam_store", "irn_checkpoint_sha256", "code_version")
                  if key in masks.index}
    result = {"method": method, "refiner": refiner, "split": settings.split,
              "images": len(manifest.splits[settings.split]), "missing": [], "masks": provenance,
              **summarize(counts, manifest, pairs)}
    if settings.confounders and not used_stuff:
        result["confounder_fp_skipped"] = f"no {STUFF_DIR}/ folder in {manifest.root}"
    log.info("eval_masks %s/%s: mIoU %.2f over %d images", method, refiner, result["miou"] or float("nan"),
             result["images"])
    write_json(json_path, result)
    write_text(tsv_path, to_tsv(result))
    return result
