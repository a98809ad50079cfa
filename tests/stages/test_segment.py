"""segment: a trained network on a folder or a list of the user's images -> palette masks, overlays and an index;
bad input is named before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from clims_core.data.image_list import image_paths
from clims_core.io.checkpoint import save_checkpoint
from clims_core.io.masks import load_mask
from clims_core.models.backbone import BackboneSpec
from clims_core.models.deeplab import DeepLab, DeepLabSpec
from clims_core.models.segmentation import architecture_of, load_seg_model, predict_labels
from clims_core.stages import segment

CLASSES = ["car", "train"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = DeepLab(DeepLabSpec(BackboneSpec(depth=18, width=8, norm="batch"), len(CLASSES) + 1, rates=(1, 2)))
    with torch.no_grad():  # a head that paints the left half 'car' and the right half background, whatever the trunk
        for conv in model.head.branches:
            conv.weight.zero_()
            conv.bias.copy_(torch.tensor([0.0, 5.0, -5.0]))
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, model.eval().state_dict(), {}, 1, architecture=architecture_of(model))
    return path


def _images(folder, sizes=((40, 32), (24, 48))):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate(sizes):
        path = folder / f"img{i}.{'jpg' if i % 2 == 0 else 'png'}"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    (folder / "notes.txt").write_text("not an image, and not listed")
    return paths


def test_a_folder_is_segmented_into_masks_overlays_and_an_index(checkpoint, tmp_path):
    paths = _images(tmp_path / "mine")
    out = tmp_path / "out"
    index = segment.run(segment.SegmentSettings(device="cpu", overlays=True), checkpoint, tmp_path / "mine", CLASSES,
                        out, "deeplab_clims")
    assert [e["image"] for e in index["images"]] == [str(p) for p in paths]  # sorted, the .txt left out
    model, _ = load_seg_model(checkpoint)
    for entry, path in zip(index["images"], paths):
        mask = load_mask(out / entry["mask"])
        with Image.open(path) as image:
            assert mask.shape == (image.height, image.width) and entry["size"] == [image.width, image.height]
            pixels = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float() / 255
        expected = predict_labels(model, pixels, (1.0,), False, torch.device("cpu"))
        assert np.array_equal(mask, expected) and entry["classes"] == ["car"] and (mask == 1).all()
        with Image.open(out / entry["overlay"]) as overlay:
            assert overlay.size == (mask.shape[1], mask.shape[0]) and overlay.mode == "RGB"
    assert json.loads((out / "index.json").read_text())["classes"] == CLASSES


def test_a_list_file_with_relative_paths_and_repeated_names(checkpoint, tmp_path):
    first = _images(tmp_path / "a", sizes=((16, 16),))
    second = _images(tmp_path / "b", sizes=((20, 12),))
    listing = tmp_path / "list.txt"
    listing.write_text(f"a/{first[0].name}\n\n{second[0]}\n")
    assert image_paths(listing) == [tmp_path / "a" / first[0].name, second[0]]
    index = segment.run(segment.SegmentSettings(device="cpu", overlays=False), checkpoint, listing, CLASSES,
                        tmp_path / "out", "x")
    assert [e["mask"] for e in index["images"]] == ["masks/img0_0.png", "masks/img0_1.png"]  # same stem, both kept
    assert all(e["overlay"] is None for e in index["images"]) and not (tmp_path / "out" / "overlays").exists()


def test_bad_input_is_named_before_any_work(checkpoint, tmp_path):
    paths = _images(tmp_path / "mine")
    (tmp_path / "mine" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"1 of 3 files are not readable images: \[.*broken.jpg"):
        segment.run(segment.SegmentSettings(device="cpu"), checkpoint, tmp_path / "mine", CLASSES, out, "x")
    assert not out.exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="the folder holds no image files"):
        image_paths(tmp_path / "empty")
    with pytest.raises(ValueError, match="no such folder or list file"):
        image_paths(tmp_path / "nowhere")
    (tmp_path / "list.txt").write_text(f"{paths[0]}\nmissing.jpg\n")
    with pytest.raises(ValueError, match=r"1 listed images do not exist, e.g. \[.*missing.jpg"):
        image_paths(tmp_path / "list.txt")
    (tmp_path / "one.txt").write_text(str(paths[0]))
    with pytest.raises(ValueError, match="network has 2 classes, the dataset 3"):
        segment.run(segment.SegmentSettings(device="cpu"), checkpoint, tmp_path / "one.txt", [*CLASSES, "bus"], out, "x")
