"""A segmentation network's masks of image files, written as VOC palette PNGs (``segment``, ``voc_submission``).

Each image is decoded, predicted whole (:func:`~clims_core.models.segmentation.predict_labels`: scales, flip,
optional denseCRF) and written at its own size; overlays blend the mask's VOC colours into the image.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from clims_core.data.segmentation import to_tensor
from clims_core.io.images import read_rgb
from clims_core.io.masks import overlay, save_mask
from clims_core.models.segmentation import SegmentationNetwork, predict_labels
from clims_core.refine.crf import CrfSettings


@dataclass(frozen=True)
class PredictionSettings:
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    crf: CrfSettings | None = None  # denseCRF with the softmax as the unary
    precision: str = "auto"  # see clims_core.device.autocast

    def __post_init__(self) -> None:
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"prediction scales must be positive, got {self.scales}")
        object.__setattr__(self, "scales", tuple(self.scales))

    @classmethod
    def from_config(cls, seg_eval: dict[str, Any], densecrf: dict[str, Any] | None,
                    precision: str = "auto") -> PredictionSettings:
        """``seg.eval``'s scales, flip and crf (with ``refine.densecrf``'s kernels): images are predicted as val is."""
        return cls(scales=tuple(seg_eval["scales"]), flip=seg_eval["flip"],
                   crf=CrfSettings(**densecrf) if seg_eval["crf"] else None, precision=precision)


def write_predictions(model: SegmentationNetwork, paths: list[Path], names: list[str], out_dir: Path,
                      settings: PredictionSettings, device: torch.device, classes: list[str],
                      mask_dir: str = "masks", overlay_dir: str | None = None, desc: str = "predict"
                      ) -> list[dict[str, Any]]:
    """``out_dir/<mask_dir>/<name>.png`` per image (and ``<overlay_dir>/<name>.jpg``); one index entry per image:
    ``{"image", "mask", "overlay", "size": [w, h], "classes": [names present]}``. ``out_dir`` is a temporary folder
    that replaces the output as a whole (:func:`~clims_core.io.atomic.atomic_directory`), so files are not renamed
    one by one."""
    (out_dir / mask_dir).mkdir(parents=True, exist_ok=True)
    if overlay_dir:
        (out_dir / overlay_dir).mkdir(parents=True, exist_ok=True)
    names_with_background = ["background", *classes]
    entries = []

    def decode(path: Path) -> tuple[np.ndarray, torch.Tensor]:
        """The image's pixels and its contiguous ``3 x H x W`` [0, 1] tensor, both made in the I/O thread (the
        network's thread would otherwise copy the permuted view into its memory format itself)."""
        pixels = read_rgb(path)
        return pixels, to_tensor(pixels)

    def write(name: str, pixels: np.ndarray, mask: np.ndarray) -> list[str]:
        """Writes the files; returns the names of the classes present (a count per label, not a sort)."""
        save_mask(out_dir / mask_dir / f"{name}.png", mask, atomic=False, compress_level=1)  # in an atomic_directory
        if overlay_dir:
            Image.fromarray(overlay(pixels, mask, 0.5)).save(out_dir / overlay_dir / f"{name}.jpg", quality=90)
        counts = np.bincount(mask.ravel(), minlength=len(names_with_background))
        return [names_with_background[i] for i in np.flatnonzero(counts[1:]) + 1]

    # One thread decodes the next image and writes the last one's files while the network runs (PIL and zlib release
    # the GIL); the predictions stay in order and in this thread.
    with ThreadPoolExecutor(max_workers=1) as io_thread:
        pending = io_thread.submit(decode, paths[0]) if paths else None
        writes = []
        for index, (path, name) in enumerate(tqdm(list(zip(paths, names)), desc=desc, unit="img",
                                                  mininterval=2.0)):
            pixels, tensor = pending.result()
            if index + 1 < len(paths):
                pending = io_thread.submit(decode, paths[index + 1])
            mask = predict_labels(model, tensor, settings.scales, settings.flip, device, settings.precision,
                                  settings.crf).astype(np.uint8)
            writes.append(io_thread.submit(write, name, pixels, mask))
            entries.append({"image": str(path), "mask": f"{mask_dir}/{name}.png",
                            "overlay": f"{overlay_dir}/{name}.jpg" if overlay_dir else None,
                            "size": [int(mask.shape[1]), int(mask.shape[0])]})
        for entry, done in zip(entries, writes):
            entry["classes"] = done.result()  # a failed write raises here
    return entries
