"""Stage ``make_cams``: multi-scale, flipped CAMs of every image into the HDF5 CAM store (IRNet's ``make_cam``).

For scales 1.0, 0.5, 1.5, 2.0, the image and its mirror go through the network; the ReLU maps of each scale are resized
to the stride-4 size and to the full image size (via the stride-16 padded size, as IRNet), summed over scales and
flips, kept for the image's labelled classes and each divided by its max. Images are decoded in DataLoader workers
and the store is written from a background thread, so the network is rarely idle. ``shard``/``shards`` split the
image list (ids ``shard::shards``) for parallel jobs merged by ``merge_cams``.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from clims_core.data.manifest import Manifest
from clims_core.device import autocast, memory_format, pick_device
from clims_core.io.cam_store import CamStoreWriter, sha256_file
from clims_core.losses.cam import normalised_cams
from clims_core.stages.train_cam import load_cam_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MakeCamsSettings:
    split: str = "train_aug"
    scales: tuple[float, ...] = (1.0, 0.5, 1.5, 2.0)
    flip: bool = True
    shard: int = 0
    shards: int = 1
    device: str = "auto"
    precision: str = "auto"  # see clims_core.device.autocast
    threads: int = 1
    workers: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.shard < self.shards:
            raise ValueError(f"shard {self.shard} outside 0..{self.shards - 1}")
        object.__setattr__(self, "scales", tuple(self.scales))


def shard_ids(ids: list[str], shard: int, shards: int) -> list[str]:
    """Every ``shards``-th id starting at ``shard`` (balanced, and the union of all shards is the list)."""
    return ids[shard::shards]


class _Images(Dataset):
    def __init__(self, manifest: Manifest, ids: list[str], labels: dict[str, np.ndarray]):
        self.manifest, self.ids, self.labels = manifest, ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor, np.ndarray]:
        image_id = self.ids[index]
        with Image.open(self.manifest.image_path(image_id)) as image:
            array = np.asarray(image.convert("RGB"))
        return image_id, torch.from_numpy(array.transpose(2, 0, 1).copy()), self.labels[image_id]


def multiscale_cams(model: torch.nn.Module, image_u8: torch.Tensor, scales: tuple[float, ...], flip: bool,
                    device: torch.device, precision: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Summed ReLU CAMs of all classes: (K x ceil(H/4) x ceil(W/4), K x H x W), not yet normalised."""
    height, width = image_u8.shape[-2:]
    strided = (math.ceil(height / 4), math.ceil(width / 4))
    padded = (math.ceil(height / 16) * 16, math.ceil(width / 16) * 16)
    image = image_u8.to(device).float().div(255)[None]
    low, high = 0.0, 0.0
    for scale in scales:
        size = (round(height * scale), round(width * scale))
        x = image if scale == 1.0 else F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        if flip:
            x = torch.cat([x, x.flip(-1)])
        with autocast(device, precision):
            maps = model.cams(x.contiguous(memory_format=memory_format(device))).float()
        maps = maps[:1] + maps[1:].flip(-1) if flip else maps
        low = low + F.interpolate(maps, size=strided, mode="bilinear", align_corners=False)[0]
        high = high + F.interpolate(maps, size=padded, mode="bilinear", align_corners=False)[0, :, :height, :width]
    return low, high


@torch.no_grad()
def run(settings: MakeCamsSettings, manifest_path: str | Path, checkpoint_path: str | Path, store_path: str | Path,
        config: dict | None = None) -> dict:
    start = time.perf_counter()
    device = pick_device(settings.device, settings.threads)
    manifest = Manifest.load(manifest_path)
    model, payload = load_cam_model(checkpoint_path)
    model = model.to(device, memory_format=memory_format(device))
    ids = shard_ids(manifest.ids(settings.split), settings.shard, settings.shards)
    labels = dict(zip(manifest.ids(settings.split), manifest.labels(settings.split)))
    loader = DataLoader(_Images(manifest, ids, labels), batch_size=None, num_workers=settings.workers)
    provenance = {"method": payload["config"].get("method"), "split": settings.split, "scales": list(settings.scales),
                  "flip": settings.flip, "shard": settings.shard, "shards": settings.shards, "train": payload["config"]}
    with CamStoreWriter(store_path, provenance, sha256_file(checkpoint_path)) as writer, \
            ThreadPoolExecutor(max_workers=1) as background:
        pending = []
        for image_id, image, label in tqdm(loader, desc=f"make_cams[{settings.split} {settings.shard + 1}/{settings.shards}]",
                                           unit="img", mininterval=2.0):
            keys = np.flatnonzero(label)
            low, high = multiscale_cams(model, image, settings.scales, settings.flip, device, settings.precision)
            low, high = normalised_cams(low[keys]), normalised_cams(high[keys])  # sums of ReLU maps: ReLU is a no-op
            pending.append(background.submit(writer.write, image_id, keys, low.cpu().numpy(), high.cpu().numpy()))
            if len(pending) > 8:
                pending.pop(0).result()
        for future in pending:
            future.result()
    seconds = time.perf_counter() - start
    log.info("%d images -> %s in %.1f s (%.1f img/s)", len(ids), store_path, seconds, len(ids) / max(seconds, 1e-9))
    return {"images": len(ids), "seconds": seconds}
