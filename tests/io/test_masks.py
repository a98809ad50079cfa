"""Palette PNG masks: VOC colours, indices (not colours) round-trip, 255 kept."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clims_core.io.masks import colorize, load_mask, overlay, save_mask, voc_colormap


def test_voc_colormap_known_entries():
    cmap = voc_colormap()
    assert cmap[0].tolist() == [0, 0, 0]
    assert cmap[1].tolist() == [128, 0, 0]  # aeroplane
    assert cmap[15].tolist() == [192, 128, 128]  # person
    assert cmap[255].tolist() == [224, 224, 192]  # ignore


def test_round_trip_keeps_indices_and_palette(tmp_path):
    mask = np.array([[0, 1, 2], [20, 255, 3]], dtype=np.uint8)
    save_mask(tmp_path / "m.png", mask)
    assert np.array_equal(load_mask(tmp_path / "m.png"), mask)
    with Image.open(tmp_path / "m.png") as image:
        assert image.mode == "P"
        assert image.getpalette()[3:6] == [128, 0, 0]
    assert colorize(mask)[1, 1].tolist() == [224, 224, 192]


def test_rgb_png_is_rejected_with_its_path(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="rgb.png.*palette"):
        load_mask(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="2-D"):
        save_mask(tmp_path / "x.png", np.zeros((2, 2, 3), dtype=np.uint8))


@pytest.mark.parametrize("alpha", [0.5, 0.3])
def test_overlay_is_the_blend_within_rounding_and_leaves_background(alpha):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    mask = rng.choice(np.array([0, 1, 5, 20, 255], dtype=np.uint8), size=(9, 11))
    exact = np.where((mask == 0)[..., None], image, image * (1 - alpha) + voc_colormap()[mask] * alpha)
    painted = overlay(image, mask, alpha)
    assert painted.shape == image.shape and painted.dtype == np.uint8 and painted.flags.writeable
    assert np.abs(painted.astype(float) - exact).max() <= 1.0
    assert np.array_equal(painted[mask == 0], image[mask == 0])
    assert np.array_equal(overlay(image, mask.astype(np.int64), alpha), painted)  # label maps of any int dtype
