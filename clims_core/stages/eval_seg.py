"""Stage ``eval_seg``: mIoU of a trained segmentation network on the val split (single scale, or multi-scale + flip).

Each image is padded (reflect) to a multiple of the output stride, as CCT's validation does, and predicted whole; for
several scales (and flips) the softmax probabilities at the image size are summed before the argmax. Writes JSON
(``{"run", "miou", "per_class": {name: {"iou", "precision", "recall"}}, "pixel_labeled", "image_labeled", ...}``,
percent) and TSV.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from clims_core.data.manifest import Manifest
from clims_core.data.segmentation import EvalDataset, split_paths
from clims_core.io.atomic import atomic_directory, write_json, write_text
from clims_core.io.digest import sha256_file
from clims_core.io.masks import save_mask
from clims_core.io.predictions import PredictionSettings
from clims_core.metrics.results import percent
from clims_core.metrics.segmentation import confusion, scores_from_confusion
from clims_core.models.segmentation import SegmentationNetwork, load_for_inference, predict_labels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalSegSettings:
    split: str = "val"
    prediction: PredictionSettings = PredictionSettings()  # scales, flip, optional denseCRF (seg.eval)
    device: str = "auto"
    threads: int = 1
    workers: int = 0
    examples: int = 4  # the first images of the split whose predictions are kept for the report


@torch.no_grad()
def evaluate(model: SegmentationNetwork, dataset: EvalDataset, settings: EvalSegSettings,
             device: torch.device) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Confusion matrix (rows ground truth, columns prediction) over the split, and the predictions of its first
    ``settings.examples`` images by index."""
    n = model.n_classes
    total = np.zeros((n, n), dtype=np.int64)
    kept = {}
    loader = DataLoader(dataset, batch_size=None, num_workers=settings.workers)
    p = settings.prediction
    for image, gt, index in tqdm(loader, desc=f"eval_seg[{settings.split}]", unit="img", mininterval=2.0):
        prediction = predict_labels(model, image, p.scales, p.flip, device, p.precision, p.crf)
        total += confusion(prediction, gt.numpy(), n)
        if int(index) < settings.examples:
            kept[int(index)] = prediction.astype(np.uint8)
    return total, kept


def to_tsv(result: dict[str, Any]) -> str:
    """One ``run  metric  value`` row per figure (percent)."""
    rows = [("images", result["images"]), ("miou", result["miou"]), ("pixel_accuracy", result["pixel_accuracy"])]
    for name, scores in result["per_class"].items():
        rows += [(f"{key}.{name}", value) for key, value in scores.items()]
    lines = ["run\tmetric\tvalue"]
    lines += [f"{result['run']}\t{metric}\t{'nan' if value is None else value}" for metric, value in rows]
    return "\n".join(lines) + "\n"


def run(settings: EvalSegSettings, manifest_path: str | Path, checkpoint_path: str | Path, json_path: str | Path,
        tsv_path: str | Path, run_name: str, examples_dir: str | Path | None = None) -> dict[str, Any]:
    """Evaluate one checkpoint on ``settings.split``; write JSON and TSV (and the first images' predictions as
    ``examples_dir/<id>.png``, for the report); return the JSON's dict."""
    start = time.perf_counter()
    manifest = Manifest.load(manifest_path)
    ids, images, masks = split_paths(manifest, settings.split, with_masks=True)
    model, payload, device = load_for_inference(checkpoint_path, manifest.classes, settings.device, settings.threads)
    conf, kept = evaluate(model, EvalDataset(images, masks, len(manifest.classes)), settings, device)
    scores = scores_from_confusion(conf)
    names = ["background", *manifest.classes]
    trained = payload.get("metrics", {})
    result = {
        "run": run_name, "method": trained.get("method", "cct"), "split": settings.split, "images": len(images),
        "scales": list(settings.prediction.scales), "flip": settings.prediction.flip,
        "crf": settings.prediction.crf is not None,
        "miou": percent(scores["miou"]),
        "pixel_accuracy": percent(np.diag(conf).sum() / max(conf.sum(), 1)),
        "per_class": {name: {key: percent(scores[key][i]) for key in ("iou", "precision", "recall")}
                      for i, name in enumerate(names)},
        "pixel_labeled": trained.get("pixel_labeled"), "image_labeled": trained.get("image_labeled"),
        "pseudo_masks": trained.get("pseudo_masks"), "init": trained.get("init"), "train_steps": payload["step"],
        "train_seconds": trained.get("seconds"), "checkpoint_sha256": sha256_file(checkpoint_path),
        "seconds": round(time.perf_counter() - start, 2),
    }
    log.info("eval_seg %s: mIoU %.2f over %d %s images", run_name, result["miou"] or float("nan"), len(images),
             settings.split)
    if examples_dir is not None:
        with atomic_directory(examples_dir) as tmp:
            for index, prediction in sorted(kept.items()):
                save_mask(tmp / f"{ids[index]}.png", prediction)
    write_json(json_path, result)
    write_text(tsv_path, to_tsv(result))
    return result


def settings_from_config(section: dict[str, Any], densecrf: dict[str, Any] | None, device: str, precision: str,
                         threads: int) -> EvalSegSettings:
    """``seg.eval`` (+ ``refine.densecrf``'s kernels when ``seg.eval.crf``) -> settings."""
    return EvalSegSettings(prediction=PredictionSettings.from_config(section, densecrf, precision), device=device,
                           threads=threads, workers=section["workers"])
