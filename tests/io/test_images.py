"""Reading images as RGB (clims_core/io/images.py): any PIL mode in, H x W x 3 uint8 out, the file closed at once."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clims_core.io.images import open_rgb, read_rgb


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "RGB"])
def test_every_mode_reads_as_writable_contiguous_rgb(tmp_path, mode):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(pixels).convert(mode).save(path)
    array = read_rgb(path)
    assert array.shape == (5, 7, 3) and array.dtype == np.uint8
    assert array.flags.writeable and array.flags.c_contiguous
    expected = np.asarray(Image.fromarray(pixels).convert(mode).convert("RGB"))
    assert np.array_equal(array, expected)
    if mode == "RGB":
        assert np.array_equal(array, pixels)


def test_the_file_is_closed_and_the_image_decoded(tmp_path, monkeypatch):
    path = tmp_path / "x.jpg"
    Image.new("RGB", (4, 3), (10, 200, 30)).save(path)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(real_open(*a, **k)) or opened[-1])
    image = open_rgb(path)
    assert image.mode == "RGB" and image.size == (4, 3)
    assert opened[0].fp is None  # the source image's file was closed on return
    path.unlink()
    assert np.asarray(image).shape == (3, 4, 3)  # its pixels are in memory, not read lazily from the file
