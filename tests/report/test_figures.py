"""Mask figures: per-image IoU, the fixed selection rule (largest gains + median, stuff shown), the rendered PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clims_core.data.manifest import Manifest
from clims_core.data.voc import STUFF_DIR
from clims_core.io.cam_store import CamStore
from clims_core.io.masks import load_mask
from clims_core.report.figures import (
    STUFF_MIN_SHARE,
    Candidate,
    choose_rows,
    class_figure,
    class_iou,
    find_candidates,
    overlay,
)
from tests.report.stores import write_store


def test_class_iou_and_overlay():
    gt = np.array([[1, 1, 0], [1, 255, 0]], np.uint8)
    pred = np.array([[1, 0, 1], [1, 1, 0]], np.uint8)
    assert class_iou(pred, gt, 1) == pytest.approx(100 * 2 / 4)  # the ignored pixel counts for neither
    assert np.isnan(class_iou(pred, gt, 2))
    image = np.full((2, 3, 3), 200, np.uint8)
    painted = overlay(image, gt)
    assert (painted[0, 2] == 200).all() and not (painted[0, 0] == 200).all()  # background left as it is


def test_choose_rows_is_a_fixed_rule():
    candidates = [Candidate(f"i{k}", {}, gain) for k, gain in enumerate([5.0, 40.0, 40.0, -3.0, 12.0, 0.0, 7.0])]
    rows = choose_rows(candidates, 3)
    # largest gains first, ties by image id, then the median of the ranking (40, 40, 12, 7, 5, 0, -3 -> 7)
    assert [(r.candidate.image_id, r.reason) for r in rows] == [
        ("i1", "largest gain 1"), ("i2", "largest gain 2"), ("i4", "largest gain 3"), ("i6", "median gain")]
    assert [r.candidate.image_id for r in choose_rows(candidates[:2], 3)] == ["i1", "i0"]  # median already shown
    assert choose_rows([], 3) == []


def test_candidates_need_the_stuff_and_rank_by_gain(tiny_world: dict, tmp_path: Path):
    manifest = Manifest.load(tiny_world["manifest"])
    items = [i for i in manifest.splits["train"] if i["labels"][manifest.classes.index("train")]]
    assert len(items) >= 3
    keep = {item["id"]: 8 * (n % 8) for n, item in enumerate(items)}  # baseline keeps 0, 8, 16, ... of 64 rows
    stores = {"cam": CamStore(write_store(tmp_path / "cam.h5", manifest, "train", keep)),
              "clims": CamStore(write_store(tmp_path / "clims.h5", manifest, "train"))}
    thresholds = {"cam": 0.5, "clims": 0.5}
    found = find_candidates(manifest, "train", "train", "railroad", stores, thresholds, "clims", "cam")

    class_id, stuff_id = manifest.classes.index("train") + 1, manifest.stuff_classes.index("railroad") + 1
    expected = {}
    for item in items:
        gt = load_mask(manifest.root / item["mask"])
        stuff = load_mask(manifest.root / STUFF_DIR / f"{item['id']}.png")
        if ((stuff == stuff_id) & (gt == 0)).mean() >= STUFF_MIN_SHARE:
            valid = gt != 255
            kept = (gt == class_id) & valid
            kept[keep[item["id"]]:] = False
            expected[item["id"]] = 100 - 100 * kept.sum() / ((gt == class_id) & valid).sum()
    assert 0 < len(expected) < len(items)  # some train images do not show railroad: they are left out
    assert {c.image_id: c.gain for c in found} == pytest.approx(expected)
    assert all(c.ious["clims"] == pytest.approx(100.0) for c in found)
    assert all(c.stuff_share >= STUFF_MIN_SHARE for c in found)

    figure = class_figure(manifest, "train", "train", "railroad", stores, thresholds, "clims", "cam", rows=2)
    best = sorted(expected, key=lambda i: (-expected[i], i))
    assert [r.candidate.image_id for r in figure.rows][:2] == best[:2]
    assert figure.eligible == len(expected) and figure.mean_gain == pytest.approx(np.mean(list(expected.values())))
    picture = Image.open(io.BytesIO(figure.png))
    assert picture.format == "PNG" and picture.width == 800  # 4 columns of 2 in at 100 dpi
    for store in stores.values():
        store.close()


def test_no_eligible_image_gives_no_figure(tiny_world: dict, tmp_path: Path):
    manifest = Manifest.load(tiny_world["manifest"])
    val_store = CamStore(write_store(tmp_path / "val.h5", manifest, "val"))  # holds no image of the train split
    stores = {"cam": val_store, "clims": val_store}
    figure = class_figure(manifest, "train", "train", "railroad", stores, {"cam": 0.5, "clims": 0.5}, "clims", "cam", 2)
    assert figure.eligible == 0 and figure.png is None and figure.rows == []
    val_store.close()


def test_pseudo_mask_columns(tiny_world: dict, tmp_path: Path):
    manifest = Manifest.load(tiny_world["manifest"])
    store = CamStore(write_store(tmp_path / "cams.h5", manifest, "train"))
    folder = tmp_path / "masks-clims-irn"
    (folder / "masks").mkdir(parents=True)
    for item in manifest.splits["train"]:  # the ground truth as pseudo masks
        (folder / "masks" / f"{item['id']}.png").write_bytes((manifest.root / item["mask"]).read_bytes())
    args = (manifest, "train", "train", "railroad", {"cam": store, "clims": store}, {"cam": 0.5, "clims": 0.5},
            "clims", "cam", 1)
    figure = class_figure(*args, mask_dirs={"clims/irn": folder})
    assert Image.open(io.BytesIO(figure.png)).width == 1000  # image, ground truth, 2 CAMs, 1 pseudo mask
    (folder / "masks" / f"{figure.rows[0].candidate.image_id}.png").unlink()
    with pytest.raises(FileNotFoundError, match="pseudo mask missing"):
        class_figure(*args, mask_dirs={"clims/irn": folder})
    store.close()
