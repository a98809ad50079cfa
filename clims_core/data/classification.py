"""Image-level training data: random long-side resize, flip and crop (IRNet's recipe), in pixel space [0, 1].

Randomness comes from ``(seed, epoch, index)`` alone, so a batch is the same whatever the number of DataLoader workers
and a resumed run sees the same augmentations as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from clims_core.data.epoch_seeded import EpochSeededDataset
from clims_core.data.manifest import Manifest
from clims_core.io.images import open_rgb


def random_resize_long(image: Image.Image, low: int, high: int, rng: np.random.Generator) -> Image.Image:
    target = int(rng.integers(low, high + 1))
    scale = target / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR)


def random_crop(array: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A ``crop x crop`` window of an H x W x 3 array; smaller images are placed at a random spot on black."""
    h, w = array.shape[:2]
    out = np.zeros((crop, crop, 3), dtype=array.dtype)
    top_src, left_src = int(rng.integers(0, max(h - crop, 0) + 1)), int(rng.integers(0, max(w - crop, 0) + 1))
    top_dst, left_dst = int(rng.integers(0, max(crop - h, 0) + 1)), int(rng.integers(0, max(crop - w, 0) + 1))
    ch, cw = min(crop, h), min(crop, w)
    out[top_dst:top_dst + ch, left_dst:left_dst + cw] = array[top_src:top_src + ch, left_src:left_src + cw]
    return out


class ClassificationDataset(EpochSeededDataset):
    """(image 3 x crop x crop in [0, 1], multi-hot labels, index) for one manifest split."""

    def __init__(self, manifest: Manifest, split: str, crop: int, resize_long: tuple[int, int] | None = None,
                 flip: bool = True, seed: int = 0):
        self.paths = [manifest.image_path(i) for i in manifest.ids(split)]
        self.labels = torch.from_numpy(manifest.labels(split))
        self.crop, self.resize_long, self.flip, self.seed = crop, resize_long, flip, seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        rng = self.rng(index)
        image = open_rgb(self.paths[index])
        if self.resize_long:
            image = random_resize_long(image, *self.resize_long, rng)
        array = np.asarray(image)
        if self.flip and rng.random() < 0.5:
            array = array[:, ::-1]
        array = random_crop(array, self.crop, rng)
        tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().div_(255)
        return tensor, self.labels[index], index
