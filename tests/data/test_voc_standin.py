"""The VOC-shaped stand-in: VOC's layout, split lists, class indices and size mix, read by prepare_data as VOC is."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

from clims_core.data.voc_standin import (LISTS, VOC_CLASSES, VOC_SIZE_MIX, StandinSettings, draw_size,
                                         generate_standin, main)
from clims_core.io.masks import load_mask
from clims_core.stages.prepare_data import PrepareSettings, run

DEMO_IN_VOC = {VOC_CLASSES.index(name) + 1 for name in ("aeroplane", "bird", "boat", "car", "person", "train")}


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    root = tmp_path_factory.mktemp("standin") / "VOC2012"
    sizes = generate_standin(StandinSettings(scale=0.002, seed=1), root, workers=2, progress=False)
    return root, sizes


def _ids(root, split):
    return (root / LISTS[split]).read_text().split()


def test_layout_splits_and_masks_are_vocs(standin):
    root, sizes = standin
    assert sizes == {"train_aug": 21, "train": 3, "val": 3}  # 0.2% of 10,582 / 1,464 / 1,449
    train_aug, train, val = (_ids(root, s) for s in ("train_aug", "train", "val"))
    assert set(train) <= set(train_aug) and not set(val) & set(train_aug)
    assert all(len(i) == 11 and i[4] == "_" for i in train_aug + val)  # 2008_000012
    assert sorted(p.stem for p in (root / "SegmentationClassAug").iterdir()) == sorted(train_aug)
    assert sorted(p.stem for p in (root / "SegmentationClass").iterdir()) == sorted(train + val)
    shapes = set()
    for image_id in train_aug:
        with Image.open(root / "JPEGImages" / f"{image_id}.jpg") as image:
            size = image.size
        with Image.open(root / "SegmentationClassAug" / f"{image_id}.png") as aug:
            assert aug.mode == "L" and aug.size == size  # SBD's greyscale index PNGs
        mask = load_mask(root / "SegmentationClassAug" / f"{image_id}.png")
        assert set(np.unique(mask)) <= {0, 255} | DEMO_IN_VOC  # VOC indices of the six demo classes
        assert set(np.unique(mask)) & DEMO_IN_VOC, image_id  # every image shows some object, as in VOC
        objects = {o.findtext("name") for o in ElementTree.parse(root / "Annotations" / f"{image_id}.xml").iter("object")}
        assert objects == {VOC_CLASSES[i - 1] for i in np.unique(mask) if 0 < i < 255}, image_id
        shapes.add(size)
    assert len(shapes) > 1 and shapes <= {(w, h) for w, h, _ in VOC_SIZE_MIX}


def test_prepare_data_reads_it_with_vocs_class_list(standin, tmp_path):
    root, sizes = standin
    settings = PrepareSettings(root=root, classes=list(VOC_CLASSES), split_files=dict(LISTS))
    run(settings, tmp_path / "manifest.json")  # strict: any disagreement between XML, mask and image stops it
    assert (tmp_path / "manifest.json").is_file()


def test_size_mix_and_settings():
    rng = np.random.default_rng(0)
    drawn = [draw_size(rng) for _ in range(2000)]
    assert max(max(s) for s in drawn) == 500
    assert abs(drawn.count((375, 500)) / 2000 - 0.52) < 0.05  # (height, width) of 500 x 375, VOC's commonest
    with pytest.raises(ValueError, match="scale"):
        StandinSettings(scale=0)
    with pytest.raises(ValueError, match="min_images"):
        StandinSettings(min_images=0)
    with pytest.raises(ValueError, match="long_side"):
        StandinSettings(long_side=16)
    small = [draw_size(np.random.default_rng(0), long_side=100) for _ in range(3)]
    assert small == [(round(h / 5), round(w / 5)) for h, w in (draw_size(np.random.default_rng(0)) for _ in range(3))]
    # the floor lifts the small splits only: a batch of 10 pixel-labeled images without a bigger train_aug
    assert StandinSettings(scale=0.003, min_images=10).split_sizes() == {"train_aug": 32, "train": 10, "val": 10}


def test_command_line_writes_the_folder(tmp_path, capsys):
    main(["--out", str(tmp_path / "VOC2012"), "--scale", "0.0005", "--workers", "1"])
    assert "train_aug 5, train 1, val 1" in capsys.readouterr().out
    assert len(list((tmp_path / "VOC2012" / "JPEGImages").iterdir())) == 6


def test_a_smaller_long_side_shrinks_every_image_alike(tmp_path, capsys):
    root = tmp_path / "VOC2012"
    main(["--out", str(root), "--scale", "0.0005", "--workers", "1", "--long-side", "100"])
    assert "train_aug 5, train 1, val 1" in capsys.readouterr().out
    mix = {(round(w / 5), round(h / 5)) for w, h, _ in VOC_SIZE_MIX}
    for path in (root / "JPEGImages").iterdir():
        masks = root / ("SegmentationClassAug" if path.stem.startswith("2008") else "SegmentationClass")
        with Image.open(path) as image, Image.open(masks / f"{path.stem}.png") as mask:
            assert image.size in mix and mask.size == image.size, path
