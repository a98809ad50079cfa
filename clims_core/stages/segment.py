"""Stage ``segment``: a trained segmentation run applied to the user's own images -> palette PNG masks and an index.

The images are a folder (its image files, sorted by name) or a text file with one image path per line (relative
paths from the file's folder). Every image is decoded before the network is loaded, so a file that is not an image
stops the stage with all such files named and nothing written. Predictions use ``seg.eval``'s scales, flip and
optional denseCRF. Writes ``masks/<name>.png`` (VOC palette; 0 background, 1..C the classes), optionally
``overlays/<name>.jpg`` (the image with the mask's colours blended in), and ``index.json``:
``{"run", "checkpoint_sha256", "classes", "images": [{"image", "mask", "overlay", "size", "classes"}]}``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from clims_core.data.image_list import image_paths
from clims_core.device import memory_format, pick_device
from clims_core.io.atomic import atomic_directory, write_json
from clims_core.io.cam_store import sha256_file
from clims_core.io.masks import colorize, save_mask
from clims_core.models.segmentation import load_seg_model, predict_labels
from clims_core.refine.crf import CrfSettings

log = logging.getLogger(__name__)
OVERLAY_ALPHA = 0.5  # the mask's share of an overlay pixel where the mask is not background


@dataclass(frozen=True)
class SegmentSettings:
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    crf: CrfSettings | None = None
    overlays: bool = False
    device: str = "auto"
    precision: str = "auto"  # see clims_core.device.autocast
    threads: int = 1


def output_names(paths: list[Path]) -> list[str]:
    """One file name per image: its stem, or, where stems repeat (a list across folders), stem + position."""
    stems = [p.stem for p in paths]
    repeated = {s for s in stems if stems.count(s) > 1}
    return [f"{s}_{i}" if s in repeated else s for i, s in enumerate(stems)]


def check_images(paths: list[Path]) -> None:
    """Decode every image fully; raise naming every file that is not a readable image."""
    bad = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
        except Exception as error:  # PIL raises several kinds for corrupt, truncated or non-image files
            bad.append(f"{path} ({error.__class__.__name__})")
    if bad:
        raise ValueError(f"segment: {len(bad)} of {len(paths)} files are not readable images: {bad[:10]}"
                         f"{' ...' if len(bad) > 10 else ''}")


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with the mask's VOC colours blended in where the mask is not background."""
    blended = image.astype(np.float32)
    objects = mask > 0
    blended[objects] = (1 - OVERLAY_ALPHA) * blended[objects] + OVERLAY_ALPHA * colorize(mask)[objects]
    return blended.round().astype(np.uint8)


def run(settings: SegmentSettings, checkpoint_path: str | Path, source: str | Path, classes: list[str],
        out_dir: str | Path, run_name: str) -> dict[str, Any]:
    """Segment every image of ``source``; write the folder atomically; return the index."""
    start = time.perf_counter()
    paths = image_paths(source)
    check_images(paths)
    model, _ = load_seg_model(checkpoint_path)
    if model.n_classes != len(classes) + 1:
        raise ValueError(f"{checkpoint_path}: network has {model.n_classes - 1} classes, the dataset {len(classes)}")
    device = pick_device(settings.device, settings.threads)
    model = model.to(device, memory_format=memory_format(device))
    names = ["background", *classes]
    entries = []
    with atomic_directory(out_dir) as tmp:
        (tmp / "masks").mkdir()
        if settings.overlays:
            (tmp / "overlays").mkdir()
        for path, name in tqdm(list(zip(paths, output_names(paths))), desc=f"segment[{run_name}]", unit="img",
                               mininterval=2.0):
            with Image.open(path) as image:
                pixels = np.array(image.convert("RGB"))
            tensor = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
            mask = predict_labels(model, tensor, settings.scales, settings.flip, device, settings.precision,
                                  settings.crf).astype(np.uint8)
            save_mask(tmp / "masks" / f"{name}.png", mask)
            entry = {"image": str(path), "mask": f"masks/{name}.png", "overlay": None,
                     "size": [int(mask.shape[1]), int(mask.shape[0])],
                     "classes": [names[i] for i in np.unique(mask) if i > 0]}
            if settings.overlays:
                Image.fromarray(overlay(pixels, mask)).save(tmp / "overlays" / f"{name}.jpg", quality=90)
                entry["overlay"] = f"overlays/{name}.jpg"
            entries.append(entry)
        index = {"run": run_name, "checkpoint_sha256": sha256_file(checkpoint_path), "classes": list(classes),
                 "scales": list(settings.scales), "flip": settings.flip, "crf": settings.crf is not None,
                 "images": entries, "seconds": round(time.perf_counter() - start, 2)}
        write_json(tmp / "index.json", index)
    log.info("segment %s: %d images in %.1f s -> %s", run_name, len(entries), index["seconds"], out_dir)
    return index


def settings_from_config(segment: dict[str, Any], seg_eval: dict[str, Any], densecrf: dict[str, Any] | None,
                         device: str, precision: str, threads: int) -> SegmentSettings:
    """``segment`` + ``seg.eval`` (scales, flip, crf with ``refine.densecrf``'s kernels) -> settings."""
    return SegmentSettings(scales=tuple(seg_eval["scales"]), flip=seg_eval["flip"],
                           crf=CrfSettings(**densecrf) if seg_eval["crf"] else None, overlays=segment["overlays"],
                           device=device, precision=precision, threads=threads)
