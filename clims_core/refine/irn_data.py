"""IRN training data (IRNet's ``VOC12AffinityDataset``): image crops with their IR labels at the boundary map's stride.

Per sample, as IRNet's: a scale drawn uniformly from ``scale_range`` (image PIL bicubic, labels nearest), a random
horizontal flip, one random ``crop x crop`` window for both (smaller images placed at a random spot; the image padded
with the ImageNet mean colour, which IRNet's zero padding of the normalised image is in pixel space; the labels with
255 so padding never makes a pair), then the labels reduced to ``crop / stride`` by nearest neighbour. Randomness comes
from ``(seed, epoch, index)`` alone, as in :mod:`clims_core.data.classification`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clims_core.data.epoch_seeded import EpochSeededDataset
from clims_core.io.images import open_rgb
from clims_core.io.masks import IGNORE_INDEX, load_mask
from clims_core.models.backbone import IMAGENET_MEAN

# The uint8 colour nearest to what the IRN's input normalisation maps to 0 (IRNet pads normalised crops with 0).
MEAN_COLOUR_U8: tuple[int, int, int] = tuple(round(255 * channel) for channel in IMAGENET_MEAN)


def joint_random_crop(arrays: list[np.ndarray], fills: list[int | tuple[int, ...]], crop: int,
                      rng: np.random.Generator) -> list[np.ndarray]:
    """One random ``crop x crop`` window of arrays of equal H x W (IRNet's ``random_crop``); padding takes ``fills``
    (a number, or one value per channel of an H x W x C array, e.g. :data:`MEAN_COLOUR_U8`)."""
    h, w = arrays[0].shape[:2]
    top_src, left_src = int(rng.integers(0, max(h - crop, 0) + 1)), int(rng.integers(0, max(w - crop, 0) + 1))
    top_dst, left_dst = int(rng.integers(0, max(crop - h, 0) + 1)), int(rng.integers(0, max(crop - w, 0) + 1))
    ch, cw = min(crop, h), min(crop, w)
    out = []
    for array, fill in zip(arrays, fills):
        canvas = np.full((crop, crop, *array.shape[2:]), fill, dtype=array.dtype)
        canvas[top_dst:top_dst + ch, left_dst:left_dst + cw] = array[top_src:top_src + ch, left_src:left_src + cw]
        out.append(canvas)
    return out


def check_scale_range(scale_range: tuple[float, float]) -> None:
    """``refine.irn.scale_range`` must be [low, high] with 0 < low <= high (IRNet: [0.5, 1.5])."""
    if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
        raise ValueError(f"refine.irn.scale_range: expected [low, high] with 0 < low <= high, got {list(scale_range)}")


def draw_scale(scale_range: tuple[float, float], rng: np.random.Generator) -> float:
    """IRNet's ``random_scale``: low + U[0, 1) * (high - low), a continuous draw (not a choice from a set)."""
    low, high = scale_range
    return low + float(rng.random()) * (high - low)


class AffinityDataset(EpochSeededDataset):
    """(image 3 x crop x crop in [0, 1], labels crop/stride x crop/stride int64 with 255 = ignore, index)."""

    def __init__(self, image_paths: list[Path], label_paths: list[Path], crop: int,
                 scale_range: tuple[float, float] = (0.5, 1.5), stride: int = 4, flip: bool = True, seed: int = 0,
                 fill: tuple[int, int, int] = MEAN_COLOUR_U8):
        if len(image_paths) != len(label_paths):
            raise ValueError(f"{len(image_paths)} images but {len(label_paths)} label maps")
        if crop % stride:
            raise ValueError(f"refine.irn.crop: expected a multiple of {stride}, got {crop}")
        check_scale_range(scale_range)
        self.image_paths, self.label_paths = image_paths, label_paths
        self.crop, self.scale_range, self.stride, self.flip, self.seed = crop, tuple(scale_range), stride, flip, seed
        self.fill = tuple(fill)

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        rng = self.rng(index)
        image = open_rgb(self.image_paths[index])
        label = Image.fromarray(load_mask(self.label_paths[index]))
        if label.size != image.size:
            raise ValueError(f"{self.label_paths[index]}: labels of {label.size[0]} x {label.size[1]} px for an image "
                             f"of {image.size[0]} x {image.size[1]} ({self.image_paths[index]})")
        scale = draw_scale(self.scale_range, rng)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        if size != image.size:  # IRNet's pil_rescale: image bicubic, labels nearest
            image = image.resize(size, Image.Resampling.BICUBIC)
            label = label.resize(size, Image.Resampling.NEAREST)
        image_array, label_array = np.asarray(image), np.asarray(label)
        if self.flip and rng.random() < 0.5:
            image_array, label_array = image_array[:, ::-1], label_array[:, ::-1]
        fills = [self.fill, IGNORE_INDEX]
        image_array, label_array = joint_random_crop([image_array, label_array], fills, self.crop, rng)
        side = self.crop // self.stride
        reduced = np.asarray(Image.fromarray(label_array).resize((side, side), Image.Resampling.NEAREST))
        tensor = torch.from_numpy(np.ascontiguousarray(image_array.transpose(2, 0, 1))).float().div_(255)
        return tensor, torch.from_numpy(reduced.astype(np.int64)), index
