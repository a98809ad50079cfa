"""IRN training crops as IRNet's: mean-colour padding, a continuous scale draw, bicubic images and nearest labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clims_core.io.masks import IGNORE_INDEX, save_mask
from clims_core.refine.irn_data import (MEAN_COLOUR_U8, AffinityDataset, check_scale_range, draw_scale,
                                        joint_random_crop)


def test_mean_colour_is_the_imagenet_mean_in_uint8():
    assert MEAN_COLOUR_U8 == (124, 116, 104)  # 255 x (0.485, 0.456, 0.406) = 123.675, 116.28, 103.53


def test_crop_pads_the_image_with_the_mean_colour_and_labels_with_ignore():
    image = np.full((2, 3, 3), 255, np.uint8)
    labels = np.ones((2, 3), np.uint8)
    crop_image, crop_labels = joint_random_crop([image, labels], [MEAN_COLOUR_U8, IGNORE_INDEX], 4,
                                                np.random.default_rng(0))
    inside = (crop_labels == 1)
    assert inside.sum() == 6 and crop_image.shape == (4, 4, 3) and crop_image.dtype == np.uint8
    assert (crop_image[inside] == 255).all()  # the 2 x 3 image, intact
    assert (crop_image[~inside] == np.array(MEAN_COLOUR_U8)).all() and (crop_labels[~inside] == IGNORE_INDEX).all()


def test_scales_are_drawn_from_the_whole_range():
    rng = np.random.default_rng(0)
    draws = np.array([draw_scale((0.5, 1.5), rng) for _ in range(2000)])
    assert draws.min() >= 0.5 and draws.max() < 1.5
    assert draws.min() < 0.51 and draws.max() > 1.49 and len(np.unique(draws)) == 2000  # continuous, not {0.5, 1, 1.5}
    assert abs(draws.mean() - 1.0) < 0.03 and np.histogram(draws, bins=10, range=(0.5, 1.5))[0].min() > 150
    assert draw_scale((1.0, 1.0), rng) == 1.0
    with pytest.raises(ValueError, match=r"refine.irn.scale_range: expected \[low, high\]"):
        check_scale_range((1.5, 0.5))


def test_dataset_resizes_image_bicubic_labels_nearest_and_pads_with_the_mean(tmp_path):
    """A 4 x 4 step edge (columns 0 0 255 255) halved by PIL bicubic is 21 234 (see test_pil_bicubic_is_pils_
    antialiased_bicubic_by_hand); labels 1 1 2 2 halved by nearest are 1 2. The 2 x 2 result sits in an 8 x 8 crop
    whose other pixels are the mean colour (labels 255)."""
    step = np.tile(np.array([0, 0, 255, 255], np.uint8), (4, 1))
    Image.fromarray(np.stack([step] * 3, axis=-1)).save(tmp_path / "a.png")
    save_mask(tmp_path / "a_labels.png", np.tile(np.array([1, 1, 2, 2], np.uint8), (4, 1)))
    dataset = AffinityDataset([tmp_path / "a.png"], [tmp_path / "a_labels.png"], crop=8, scale_range=(0.5, 0.5),
                              stride=1, flip=False)
    image, labels, index = dataset[0]
    assert image.shape == (3, 8, 8) and labels.shape == (8, 8) and index == 0
    inside = labels != IGNORE_INDEX
    assert inside.sum() == 4
    rows, cols = torch.nonzero(inside, as_tuple=True)
    top, left = int(rows.min()), int(cols.min())
    assert labels[top:top + 2, left:left + 2].tolist() == [[1, 2], [1, 2]]
    assert torch.equal((image[:, top:top + 2, left:left + 2] * 255).round(), torch.tensor([[21.0, 234.0]] * 2).expand(3, 2, 2))
    mean = torch.tensor(MEAN_COLOUR_U8, dtype=torch.float32) / 255
    assert torch.equal(image.permute(1, 2, 0)[~inside], mean.expand(60, 3))
