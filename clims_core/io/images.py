"""Reading an image file as RGB, in one place: decoded in full and its file closed at once (PIL opens lazily and
would otherwise hold the file until the image is collected, which runs out of handles over 10,582 VOC images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def open_rgb(path: str | Path) -> Image.Image:
    """The image as a decoded RGB PIL image (for PIL resizing before the array is made)."""
    with Image.open(path) as image:
        return image.convert("RGB")


def read_rgb(path: str | Path) -> np.ndarray:
    """The image as a writable, C-contiguous H x W x 3 uint8 array (what torch.from_numpy and pydensecrf need)."""
    return np.array(open_rgb(path), dtype=np.uint8, order="C")
