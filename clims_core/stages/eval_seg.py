"""Stage ``eval_seg``: mIoU of a trained segmentation network on the val split (single scale, or multi-scale + flip).

Each image is padded (reflect) to a multiple of the output stride, as CCT's validation does, and predicted whole; for
several scales (and flips) the softmax probabilities at the image size are summed before the argmax. Writes JSON
(``{"run", "miou", "per_class": {name: {"iou", "precision", "recall"}}, "pixel_labeled", "image_labeled", ...}``,
percent) and TSV.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from clims_core.data.manifest import Manifest
from clims_core.data.segmentation import EvalDataset, split_paths
from clims_core.device import autocast, memory_format, pick_device
from clims_core.io.atomic import write_json, write_text
from clims_core.io.cam_store import sha256_file
from clims_core.metrics.results import percent
from clims_core.metrics.segmentation import confusion, scores_from_confusion
from clims_core.models.cct import CCT
from clims_core.stages.train_seg import load_seg_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalSegSettings:
    split: str = "val"
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    device: str = "auto"
    precision: str = "auto"  # see clims_core.device.autocast
    threads: int = 1
    workers: int = 0

    def __post_init__(self) -> None:
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"eval scales must be positive, got {self.scales}")
        object.__setattr__(self, "scales", tuple(self.scales))


@torch.no_grad()
def predict_probabilities(model: CCT, image: torch.Tensor, scales: tuple[float, ...], flip: bool,
                          device: torch.device, precision: str = "auto") -> torch.Tensor:
    """Summed softmax ``C x H x W`` of a ``3 x H x W`` [0, 1] image over scales (and mirrored copies)."""
    stride = model.spec.encoder.output_stride
    height, width = image.shape[-2:]
    image = image.to(device)[None]
    total = torch.zeros(model.spec.n_classes, height, width, device=device)
    for scale in scales:
        x = image if scale == 1.0 else F.interpolate(image, scale_factor=scale, mode="bilinear", align_corners=False)
        h, w = x.shape[-2:]
        if flip:  # mirrored before padding, so the padding is on the right of both and one crop fits both
            x = torch.cat([x, x.flip(-1)])
        pad_h, pad_w = math.ceil(h / stride) * stride - h, math.ceil(w / stride) * stride - w
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if pad_h < h and pad_w < w else "replicate")
        with autocast(device, precision):
            logits = model(x.contiguous(memory_format=memory_format(device))).float()[..., :h, :w]
        probs = F.softmax(F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False), dim=1)
        total += probs[0] + (probs[1].flip(-1) if flip else 0)
    return total


@torch.no_grad()
def evaluate(model: CCT, dataset: EvalDataset, settings: EvalSegSettings, device: torch.device) -> np.ndarray:
    """Confusion matrix (rows ground truth, columns prediction) over the split."""
    n = model.spec.n_classes
    total = np.zeros((n, n), dtype=np.int64)
    loader = DataLoader(dataset, batch_size=None, num_workers=settings.workers)
    for image, gt, _ in tqdm(loader, desc=f"eval_seg[{settings.split}]", unit="img", mininterval=2.0):
        probabilities = predict_probabilities(model, image, settings.scales, settings.flip, device, settings.precision)
        prediction = probabilities.argmax(0)
        total += confusion(prediction.cpu().numpy(), gt.numpy(), n)
    return total


def to_tsv(result: dict[str, Any]) -> str:
    """One ``run  metric  value`` row per figure (percent)."""
    rows = [("images", result["images"]), ("miou", result["miou"]), ("pixel_accuracy", result["pixel_accuracy"])]
    for name, scores in result["per_class"].items():
        rows += [(f"{key}.{name}", value) for key, value in scores.items()]
    lines = ["run\tmetric\tvalue"]
    lines += [f"{result['run']}\t{metric}\t{'nan' if value is None else value}" for metric, value in rows]
    return "\n".join(lines) + "\n"


def run(settings: EvalSegSettings, manifest_path: str | Path, checkpoint_path: str | Path, json_path: str | Path,
        tsv_path: str | Path, run_name: str) -> dict[str, Any]:
    """Evaluate one checkpoint on ``settings.split``; write JSON and TSV; return the JSON's dict."""
    start = time.perf_counter()
    manifest = Manifest.load(manifest_path)
    _, images, masks = split_paths(manifest, settings.split, with_masks=True)
    device = pick_device(settings.device, settings.threads)
    model, payload = load_seg_model(checkpoint_path)
    if model.spec.n_classes != len(manifest.classes) + 1:
        raise ValueError(f"{checkpoint_path}: network has {model.spec.n_classes - 1} classes, the manifest "
                         f"{len(manifest.classes)}")
    model = model.to(device, memory_format=memory_format(device))
    conf = evaluate(model, EvalDataset(images, masks, len(manifest.classes)), settings, device)
    scores = scores_from_confusion(conf)
    names = ["background", *manifest.classes]
    trained = payload.get("metrics", {})
    result = {
        "run": run_name, "method": trained.get("method", "cct"), "split": settings.split, "images": len(images),
        "scales": list(settings.scales), "flip": settings.flip,
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
    write_json(json_path, result)
    write_text(tsv_path, to_tsv(result))
    return result
