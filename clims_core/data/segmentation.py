"""Segmentation training data: pixel-labeled images, image-level images with or without pseudo masks, val images.

Augmentation is CCT's (joint for the image and its mask): random long-side resize to ``base_size x U(scale_range)``,
padding up to the crop (image with the ImageNet mean colour, mask with 255 = ignore), random crop, random flip.
Images are returned in pixel space [0, 1] (the network normalises), masks as int64 label maps.

Randomness comes from ``(seed, stream, pass, index)`` alone: the samplers yield ``(pass, index)`` pairs, so a batch is
the same whatever the number of DataLoader workers, and the labeled set (cycled several times per pass over the
unlabeled set) gets fresh augmentations on every cycle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from clims_core.data.manifest import Manifest
from clims_core.io.images import open_rgb
from clims_core.io.masks import IGNORE_INDEX, load_mask
from clims_core.models.backbone import IMAGENET_MEAN

PAD_COLOUR = tuple(round(255 * m) for m in IMAGENET_MEAN)


@dataclass(frozen=True)
class AugmentSettings:
    crop: int = 320
    base_size: int = 400  # long side before scaling (CCT's VOC base size)
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True

    def __post_init__(self) -> None:
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range: expected 0 < low <= high, got {self.scale_range}")
        object.__setattr__(self, "scale_range", (float(low), float(high)))


def joint_augment(image: Image.Image, mask: np.ndarray | None, settings: AugmentSettings,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize (image bilinear, mask nearest), pad, crop and flip an image and its mask with the same draws."""
    long_side = settings.base_size * rng.uniform(*settings.scale_range)
    scale = long_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    array = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
    if mask is not None:
        mask = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
    crop = settings.crop
    height, width = array.shape[:2]
    pad_h, pad_w = max(crop - height, 0), max(crop - width, 0)
    if pad_h or pad_w:
        padded = np.empty((height + pad_h, width + pad_w, 3), dtype=np.uint8)
        padded[:] = PAD_COLOUR
        padded[:height, :width] = array
        array = padded
        if mask is not None:
            mask = np.pad(mask, ((0, pad_h), (0, pad_w)), constant_values=IGNORE_INDEX)
    top = int(rng.integers(0, array.shape[0] - crop + 1))
    left = int(rng.integers(0, array.shape[1] - crop + 1))
    array = array[top:top + crop, left:left + crop]
    mask = mask[top:top + crop, left:left + crop] if mask is not None else None
    if settings.flip and rng.random() < 0.5:
        array = array[:, ::-1]
        mask = mask[:, ::-1] if mask is not None else None
    return array, mask


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().div_(255)


def read_mask(path: Path, size: tuple[int, int], n_classes: int) -> np.ndarray:
    """A label PNG checked against its image's ``(width, height)`` and the class count (values 0..n_classes, 255)."""
    mask = load_mask(path)
    if (mask.shape[1], mask.shape[0]) != size:
        raise ValueError(f"{path}: mask is {mask.shape[1]} x {mask.shape[0]} px but its image is {size[0]} x {size[1]}")
    bad = mask[(mask != IGNORE_INDEX) & (mask > n_classes)]
    if bad.size:
        raise ValueError(f"{path}: label {int(bad.max())} outside 0..{n_classes} (0 background, 1..{n_classes} "
                         f"classes, 255 ignore)")
    return mask


class SegmentationDataset(Dataset):
    """Items ``(image, mask, index)`` for keys ``(pass, index)``; images without a mask get an all-255 mask."""

    def __init__(self, image_paths: list[Path], mask_paths: list[Path] | None, n_classes: int,
                 augment: AugmentSettings, seed: int = 0, stream: int = 0):
        if mask_paths is not None and len(mask_paths) != len(image_paths):
            raise ValueError("one mask path per image expected")
        self.image_paths, self.mask_paths, self.n_classes = image_paths, mask_paths, n_classes
        self.augment, self.seed, self.stream = augment, seed, stream

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, int]:
        draw, index = key
        rng = np.random.default_rng([self.seed, self.stream, draw, index])
        image = open_rgb(self.image_paths[index])
        mask = None if self.mask_paths is None else read_mask(self.mask_paths[index], image.size, self.n_classes)
        array, mask = joint_augment(image, mask, self.augment, rng)
        if mask is None:
            mask = np.full(array.shape[:2], IGNORE_INDEX, dtype=np.uint8)
        return to_tensor(array), torch.from_numpy(np.array(mask, dtype=np.int64)), index


class PassSampler(Sampler[tuple[int, int]]):
    """Endless ``(pass, index)`` keys: a fresh permutation of the dataset per pass, seeded by
    ``(seed, stream, pass)``."""

    def __init__(self, size: int, seed: int = 0, stream: int = 0, shuffle: bool = True):
        if size <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.size, self.seed, self.stream, self.shuffle = size, seed, stream, shuffle

    def _order(self, draw: int) -> np.ndarray:
        return (np.random.default_rng([self.seed, self.stream, draw]).permutation(self.size) if self.shuffle
                else np.arange(self.size))

    def keys(self, start: int = 0) -> Iterator[tuple[int, int]]:
        """The key sequence from its ``start``-th item on (computed, not replayed: resuming is free)."""
        draw, offset = divmod(start, self.size)
        while True:
            for index in self._order(draw)[offset:]:
                yield draw, int(index)
            draw, offset = draw + 1, 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return self.keys()

    def batches(self, batch_size: int, start: int = 0) -> Iterator[list[tuple[int, int]]]:
        """Consecutive ``batch_size`` keys (a batch may span two passes), from global batch ``start`` on."""
        keys = self.keys(start * batch_size)
        while True:
            yield [next(keys) for _ in range(batch_size)]


class EvalDataset(Dataset):
    """Whole images and their ground truth, for evaluation: ``(image, mask, index)``."""

    def __init__(self, image_paths: list[Path], mask_paths: list[Path], n_classes: int):
        self.image_paths, self.mask_paths, self.n_classes = image_paths, mask_paths, n_classes

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image = open_rgb(self.image_paths[index])
        mask = read_mask(self.mask_paths[index], image.size, self.n_classes)
        return to_tensor(np.asarray(image)), torch.from_numpy(np.array(mask, dtype=np.int64)), index


def split_paths(manifest: Manifest, split: str, with_masks: bool) -> tuple[list[str], list[Path], list[Path] | None]:
    """Ids, image paths and (with ``with_masks``) ground-truth mask paths of a manifest split."""
    if split not in manifest.splits:
        raise ValueError(f"split {split!r} is not in the manifest (splits: {list(manifest.splits)})")
    items = manifest.splits[split]
    ids = [item["id"] for item in items]
    images = [manifest.image_path(i) for i in ids]
    if not with_masks:
        return ids, images, None
    unmasked = [item["id"] for item in items if not item.get("mask")]
    if unmasked:
        raise ValueError(f"split {split}: {len(unmasked)} images have no ground-truth mask in the manifest "
                         f"(e.g. {unmasked[:5]}); segmentation training and evaluation need masks for this split")
    return ids, images, [manifest.root / item["mask"] for item in items]


def image_level_ids(manifest: Manifest, image_split: str = "train_aug", pixel_split: str = "train") -> list[str]:
    """The image-level set: ``image_split`` minus the pixel-labeled ``pixel_split`` (VOC: 10,582 - 1,464 = 9,118)."""
    labeled = set(manifest.ids(pixel_split))
    return [i for i in manifest.ids(image_split) if i not in labeled]


@dataclass(frozen=True)
class PseudoMaskIndex:
    """The refinement stage's ``index.json``: ``{"split", "ids", "masks": {id: relative png}, "classes"}``."""

    path: Path
    split: str
    masks: dict[str, Path]
    classes: list[str]

    @classmethod
    def load(cls, path: str | Path) -> "PseudoMaskIndex":
        path = Path(path)
        form = '{"split": "train_aug", "ids": [...], "masks": {"<id>": "masks/<id>.png"}, "classes": [...]}'
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: cannot read the pseudo-mask index ({error}); expected JSON {form}") from None
        if not isinstance(data, dict) or not all(k in data for k in ("split", "ids", "masks", "classes")) \
                or not isinstance(data["masks"], dict):
            raise ValueError(f"{path}: not a pseudo-mask index; expected {form}")
        masks = {image_id: path.parent / relative for image_id, relative in data["masks"].items()}
        return cls(path, data["split"], masks, list(data["classes"]))

    def paths_for(self, ids: list[str], classes: list[str]) -> list[Path]:
        """Mask paths of ``ids``, after checking the index's classes and that no id is missing."""
        if self.classes != list(classes):
            raise ValueError(f"{self.path}: pseudo masks are for classes {self.classes}, the dataset has {classes}")
        missing = [i for i in ids if i not in self.masks]
        if missing:
            raise ValueError(f"{self.path}: {len(missing)} of {len(ids)} image-level images have no pseudo mask "
                             f"(e.g. {missing[:5]}); the index must cover the split {self.split}")
        paths = [self.masks[i] for i in ids]
        absent = [str(p) for p in paths if not p.is_file()]
        if absent:
            raise ValueError(f"{self.path}: {len(absent)} pseudo-mask files listed in the index do not exist "
                             f"(e.g. {absent[:3]})")
        return paths
