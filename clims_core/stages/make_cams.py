"""Stage ``make_cams``: multi-scale, flipped CAMs of every image into the HDF5 CAM store (IRNet's ``make_cam``).

For scales 1.0, 0.5, 1.5, 2.0, the image and its mirror go through the network; the ReLU maps of each scale are resized
to the stride-4 size and to the full image size (via the stride-16 padded size, as IRNet), summed over scales and
flips, kept for the image's labelled classes and each divided by its max. Each scale is resized from the uint8 image
with PIL bicubic (IRNet's ``pil_rescale``: antialiased when shrinking) before normalisation, or with ``resize:
bilinear`` as float bilinear without antialiasing on the device (this project's earlier behaviour). Images are decoded
and resized in DataLoader workers and the store is written from a background thread, so the network is rarely idle.
``shard``/``shards`` split the image list (ids ``shard::shards``) for parallel jobs merged by ``merge_cams``.

``reuse_path`` names a finished store of the same checkpoint and settings (the train split's, when this is train_aug:
VOC's train is inside train_aug): the images it holds are copied, bit for bit, instead of computed again.
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

from clims_core.checks import require_one_of
from clims_core.data.manifest import Manifest
from clims_core.data.shards import check_shard, shard_ids
from clims_core.device import autocast, memory_format, pick_device
from clims_core.io.cam_store import CamStore, CamStoreWriter, check_cam_classes
from clims_core.io.digest import sha256_file
from clims_core.io.images import open_rgb
from clims_core.losses.cam import normalised_cams
from clims_core.models.cam_net import load_cam_model

log = logging.getLogger(__name__)
# How each scale is made from the image: IRNet's PIL bicubic on uint8 (the default), or float bilinear on the device.
RESIZES = ("pil_bicubic", "bilinear")


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
    resize: str = "pil_bicubic"  # one of RESIZES

    def __post_init__(self) -> None:
        require_one_of("cams.resize", self.resize, list(RESIZES))
        check_shard(self.shard, self.shards)
        object.__setattr__(self, "scales", tuple(self.scales))


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """IRNet's ``pil_rescale`` size: each side times ``scale``, rounded (half to even, as ``np.round``)."""
    return round(height * scale), round(width * scale)


def pil_bicubic(image_u8: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A 3 x H x W uint8 image resized to ``size`` (H, W) by PIL bicubic, as IRNet's ``pil_resize``: PIL widens the
    filter when shrinking (antialiased), and rounds and clips to uint8 after each pass. Same size: the image itself."""
    if tuple(image_u8.shape[-2:]) == tuple(size):
        return image_u8
    array = np.ascontiguousarray(image_u8.cpu().numpy().transpose(1, 2, 0))
    resized = Image.fromarray(array).resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(resized).transpose(2, 0, 1).copy())


def pil_scales(image_u8: torch.Tensor, scales: tuple[float, ...]) -> list[torch.Tensor]:
    """The uint8 image at every scale by :func:`pil_bicubic` (CPU work, done in the DataLoader workers)."""
    height, width = image_u8.shape[-2:]
    return [pil_bicubic(image_u8, scaled_size(height, width, scale)) for scale in scales]


class _Images(Dataset):
    def __init__(self, manifest: Manifest, ids: list[str], labels: dict[str, np.ndarray],
                 scales: tuple[float, ...] | None = None):
        self.manifest, self.ids, self.labels, self.scales = manifest, ids, labels, scales

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor, np.ndarray, list[torch.Tensor]]:
        """(id, 3 x H x W uint8, labels, the image at each of ``scales`` by PIL bicubic; [] without scales)."""
        image_id = self.ids[index]
        # the transposed copy is the one copy: a read-only view of the decoded image suffices before it
        array = np.asarray(open_rgb(self.manifest.image_path(image_id)))
        tensor = torch.from_numpy(array.transpose(2, 0, 1).copy())
        scaled = pil_scales(tensor, self.scales) if self.scales is not None else []
        return image_id, tensor, self.labels[image_id], scaled


def multiscale_cams(model: torch.nn.Module, image_u8: torch.Tensor, scales: tuple[float, ...], flip: bool,
                    device: torch.device, precision: str = "auto", resize: str = "pil_bicubic",
                    scaled: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed ReLU CAMs of all classes: (K x ceil(H/4) x ceil(W/4), K x H x W), not yet normalised.

    ``resize`` is how each scale is made (see :data:`RESIZES`); ``scaled``, when given, is the image already resized
    to every scale by :func:`pil_scales` (the DataLoader workers do it, so the device does not wait for PIL)."""
    require_one_of("cams.resize", resize, list(RESIZES))
    height, width = image_u8.shape[-2:]
    strided = (math.ceil(height / 4), math.ceil(width / 4))
    padded = (math.ceil(height / 16) * 16, math.ceil(width / 16) * 16)
    image = image_u8.to(device).float().div(255)[None]
    if resize == "pil_bicubic" and scaled is None:
        scaled = pil_scales(image_u8, scales)
    low, high = 0.0, 0.0
    for index, scale in enumerate(scales):
        size = scaled_size(height, width, scale)
        if scale == 1.0 or size == (height, width):
            x = image
        elif resize == "pil_bicubic":
            x = scaled[index].to(device).float().div(255)[None]
        else:
            x = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        if flip:
            x = torch.cat([x, x.flip(-1)])
        with autocast(device, precision):
            maps = model.cams(x.contiguous(memory_format=memory_format(device))).float()
        maps = maps[:1] + maps[1:].flip(-1) if flip else maps
        low = low + F.interpolate(maps, size=strided, mode="bilinear", align_corners=False)[0]
        high = high + F.interpolate(maps, size=padded, mode="bilinear", align_corners=False)[0, :, :height, :width]
    return low, high


def _reusable(reuse_path: str | Path, checkpoint_sha256: str, provenance: dict) -> CamStore:
    """The store to copy from, once it is shown to hold the same network's maps made the same way."""
    store = CamStore(reuse_path)
    attrs = store.attrs
    made = {key: attrs["config"].get(key) for key in ("scales", "resize", "flip", "train")}
    wanted = {key: provenance[key] for key in made}
    if attrs["checkpoint_sha256"] != checkpoint_sha256 or made != wanted:
        store.close()
        raise ValueError(f"{reuse_path}: its CAMs come from another checkpoint or other cams settings than this "
                         f"make_cams job's (checkpoint {attrs['checkpoint_sha256'][:12]} vs {checkpoint_sha256[:12]}, "
                         f"settings {made} vs {wanted}); remove it or set cams.reuse_train: false")
    return store


@torch.no_grad()
def run(settings: MakeCamsSettings, manifest_path: str | Path, checkpoint_path: str | Path, store_path: str | Path,
        config: dict | None = None, reuse_path: str | Path | None = None) -> dict:
    start = time.perf_counter()
    device = pick_device(settings.device, settings.threads)
    manifest = Manifest.load(manifest_path)
    model, payload = load_cam_model(checkpoint_path)
    model = model.to(device, memory_format=memory_format(device))
    ids = shard_ids(manifest.ids(settings.split), settings.shard, settings.shards)
    labels = dict(zip(manifest.ids(settings.split), manifest.labels(settings.split)))
    # The shard index stays out: merge_cams requires the shards of one split to share this config's hash.
    provenance = {"method": payload["config"].get("method"), "split": settings.split, "scales": list(settings.scales),
                  "resize": settings.resize, "flip": settings.flip, "shards": settings.shards,
                  "train": payload["config"]}
    checkpoint_sha256 = sha256_file(checkpoint_path)
    reuse = _reusable(reuse_path, checkpoint_sha256, provenance) if reuse_path else None
    held = set(reuse.ids()) if reuse is not None else set()
    copied = [image_id for image_id in ids if image_id in held]
    to_compute = [image_id for image_id in ids if image_id not in held]
    prescale = settings.scales if settings.resize == "pil_bicubic" else None
    loader = DataLoader(_Images(manifest, to_compute, labels, prescale), batch_size=None, num_workers=settings.workers)
    with CamStoreWriter(store_path, provenance, checkpoint_sha256) as writer, \
            ThreadPoolExecutor(max_workers=1) as background:
        for image_id in copied:
            writer.write(image_id, *_copied_maps(reuse, image_id, labels[image_id], manifest.classes))
        if reuse is not None:
            reuse.close()
            log.info("%d of %d images copied from %s", len(copied), len(ids), reuse_path)
        pending = []
        progress = tqdm(loader, desc=f"make_cams[{settings.split} {settings.shard + 1}/{settings.shards}]", unit="img",
                        mininterval=2.0)
        for image_id, image, label, scaled in progress:
            keys = np.flatnonzero(label)
            low, high = multiscale_cams(model, image, settings.scales, settings.flip, device, settings.precision,
                                        settings.resize, scaled or None)
            low, high = normalised_cams(low[keys]), normalised_cams(high[keys])  # sums of ReLU maps: ReLU is a no-op
            pending.append(background.submit(writer.write, image_id, keys, low.cpu().numpy(), high.cpu().numpy()))
            if len(pending) > 8:
                pending.pop(0).result()
        for future in pending:
            future.result()
    seconds = time.perf_counter() - start
    log.info("%d images (%d computed) -> %s in %.1f s (%.1f img/s)", len(ids), len(to_compute), store_path, seconds,
             len(ids) / max(seconds, 1e-9))
    return {"images": len(ids), "computed": len(to_compute), "seconds": seconds}


def _copied_maps(store: CamStore, image_id: str, label: np.ndarray,
                 classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, stride-4 maps, full-size maps) of one image from ``store``; float16 -> float32 -> float16 is exact."""
    keys, low = store.read(image_id, high_res=False)
    _, high = store.read(image_id, high_res=True)
    check_cam_classes(store.path, image_id, keys, label, classes)
    return keys, low, high
