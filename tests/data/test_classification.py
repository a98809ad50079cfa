"""Training augmentation: deterministic per (seed, epoch, index), right shapes and ranges."""

from __future__ import annotations

import numpy as np
import torch

from clims_core.data.classification import ClassificationDataset, random_crop
from clims_core.data.manifest import Manifest


def test_same_seed_epoch_index_same_sample(tiny_world):
    manifest = Manifest.load(tiny_world["manifest"])
    a = ClassificationDataset(manifest, "train_aug", crop=48, resize_long=(40, 80), seed=3)
    b = ClassificationDataset(manifest, "train_aug", crop=48, resize_long=(40, 80), seed=3)
    image, label, index = a[5]
    assert image.shape == (3, 48, 48) and 0 <= image.min() and image.max() <= 1 and index == 5
    assert torch.equal(image, b[5][0]) and torch.equal(label, torch.from_numpy(manifest.labels("train_aug")[5]))
    b.set_epoch(1)
    assert not torch.equal(image, b[5][0])


def test_random_crop_pads_small_images_with_black():
    rng = np.random.default_rng(0)
    out = random_crop(np.full((4, 6, 3), 255, np.uint8), 8, rng)
    assert out.shape == (8, 8, 3) and (out == 255).sum() == 4 * 6 * 3
