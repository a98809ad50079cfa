"""Palette PNG masks: VOC colours, indices (not colours) round-trip, 255 kept."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clims_core.io.masks import colorize, load_mask, save_mask, voc_colormap


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
