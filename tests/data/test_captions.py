"""The captions corpus reader: good corpus, and every malformed line reported with its line number."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clims_core.data.captions import CaptionsError, load_images, read_captions


def corpus(tmp_path, lines, images=("a", "b")):
    (tmp_path / "images").mkdir(exist_ok=True)
    for name in images:
        Image.new("RGB", (10, 8), (200, 10, 10)).save(tmp_path / "images" / f"{name}.jpg")
    (tmp_path / "captions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def test_reads_pairs_in_order(tmp_path):
    folder = corpus(tmp_path, ["a\ta photo of a train.", "", "b\ta photo of railroad."])
    assert read_captions(folder) == [("a", "a photo of a train."), ("b", "a photo of railroad.")]
    images = load_images([folder / "images" / "a.jpg"], 16)
    assert images.shape == (1, 3, 16, 16) and images.dtype == np.uint8 and images[0, 0].mean() > 150


def test_every_problem_is_listed_with_its_line(tmp_path):
    folder = corpus(tmp_path, ["a\tfine", "no tab here", "a\tduplicate", "ghost\tmissing image", "b\t  "])
    with pytest.raises(CaptionsError) as caught:
        read_captions(folder)
    message = str(caught.value)
    assert "4 problem(s)" in message
    for fragment in ("captions.tsv:2", "captions.tsv:3: duplicate id 'a'", "captions.tsv:4", "ghost.jpg missing", "captions.tsv:5"):
        assert fragment in message


def test_missing_tsv(tmp_path):
    with pytest.raises(CaptionsError, match="captions.tsv: not found"):
        read_captions(tmp_path)
