"""eval_cams: perfect CAMs score 100, a shifted CAM scores the hand-computed value, confounder rates, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clims_core.data.manifest import Manifest
from clims_core.io.cam_store import CamStoreWriter, stride_shape
from clims_core.io.masks import load_mask, save_mask
from clims_core.metrics.segmentation import DEFAULT_THRESHOLDS
from clims_core.stages.eval_cams import EvalCamsSettings, rising_at_edge, run
from tests.conftest import THREADS


def outputs(tmp_path: Path) -> dict[str, Path]:
    return {"json_path": tmp_path / "cams.json", "tsv_path": tmp_path / "cams.tsv", "plot_path": tmp_path / "curve.png"}


def write_cams(path: Path, cams: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    with CamStoreWriter(path, {"method": "test"}, "0" * 64) as writer:
        for image_id, (keys, high) in cams.items():
            writer.write(image_id, keys, np.zeros((len(keys), *stride_shape(*high.shape[1:])), np.float32), high)


def gt_cams(manifest: Manifest, split: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CAM = 1 on each labelled class's ground-truth region, 0 elsewhere."""
    cams = {}
    for item in manifest.splits[split]:
        gt = load_mask(manifest.root / item["mask"])
        keys = np.flatnonzero(item["labels"])
        cams[item["id"]] = (keys, np.stack([(gt == k + 1) for k in keys]).astype(np.float32))
    return cams


def test_ground_truth_cams_score_100(tiny_world: dict, tmp_path: Path) -> None:
    manifest = Manifest.load(tiny_world["manifest"])
    write_cams(tmp_path / "cams.h5", gt_cams(manifest, "train"))
    settings = EvalCamsSettings(confounders={"train": "railroad", "boat": "water"}, threads=THREADS)
    result = run(settings, tiny_world["manifest"], tmp_path / "cams.h5", **outputs(tmp_path), method="oracle")
    assert result["images"] == len(manifest.splits["train"]) and result["missing"] == []
    assert result["miou_per_threshold"] == [100.0] * len(DEFAULT_THRESHOLDS) and result["miou"] == 100.0
    assert result["best_threshold"] == 0.05 and result["best_at_sweep_edge"] is False  # a flat curve: ties go low
    assert all(s["iou"] in (100.0, None) for s in result["per_class"].values())
    assert result["per_class"]["background"]["iou"] == 100.0
    for pair in ("train/railroad", "boat/water"):
        assert result["confounder_fp"][pair]["rate"] in (0.0, None)
    assert sum(entry["pixels"] for entry in result["confounder_fp"].values()) > 0
    assert json.loads((tmp_path / "cams.json").read_text()) == result


@pytest.fixture
def hand_world(tmp_path: Path) -> dict:
    """Two 4x4 images. a: train on columns 0-1, its CAM shifted right (1.0 on column 1, 0.5 on column 2);
    b: cat on rows 0-1 with an exact CAM. Railroad (stuff 1) on row 3 of both."""
    root = tmp_path / "VOC"
    gt_a = np.zeros((4, 4), np.uint8)
    gt_a[:, :2] = 2
    gt_b = np.zeros((4, 4), np.uint8)
    gt_b[:2] = 1
    stuff = np.zeros((4, 4), np.uint8)
    stuff[3] = 1
    for image_id, gt in (("a", gt_a), ("b", gt_b)):
        save_mask(root / "SegmentationClass" / f"{image_id}.png", gt)
        save_mask(root / "SegmentationStuff" / f"{image_id}.png", stuff)
    items = [{"id": "a", "height": 4, "width": 4, "labels": [0, 1], "mask": "SegmentationClass/a.png"},
             {"id": "b", "height": 4, "width": 4, "labels": [1, 0], "mask": "SegmentationClass/b.png"}]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema_version": 1, "root": str(root), "classes": ["cat", "train"],
                                    "stuff_classes": ["railroad"], "splits": {"train": items}, "skipped": [],
                                    "captions": None}))
    cam_a = np.zeros((1, 4, 4), np.float32)
    cam_a[0, :, 1], cam_a[0, :, 2] = 1.0, 0.5
    cams = {"a": (np.array([1]), cam_a), "b": (np.array([0]), (gt_b == 1)[None].astype(np.float32))}
    return {"root": root, "manifest": manifest, "cams": cams}


def test_shifted_cam_hand_computed(hand_world: dict, tmp_path: Path) -> None:
    write_cams(tmp_path / "cams.h5", hand_world["cams"])
    settings = EvalCamsSettings(confounders={"train": "railroad"})
    result = run(settings, hand_world["manifest"], tmp_path / "cams.h5", **outputs(tmp_path), method="shifted")
    # t < 0.5: train predicted on columns 1-2 of a. background: tp 4+8, union 20 -> 0.6; train 4 / 12; cat 1
    low = 100 * (0.6 + 1 / 3 + 1) / 3
    # t >= 0.5 (a tie with 0.5 goes to the background): train on column 1. background 16/20; train 4/8; cat 1
    high = 100 * (0.8 + 0.5 + 1) / 3
    assert result["miou_per_threshold"] == pytest.approx([low] * 9 + [high] * 10, abs=1e-3)
    assert result["best_threshold"] == 0.5 and result["miou"] == pytest.approx(high, abs=1e-3)
    assert result["best_at_sweep_edge"] is False
    assert result["per_class"]["train"] == pytest.approx({"iou": 50.0, "precision": 100.0, "recall": 50.0})
    assert result["per_class"]["background"] == pytest.approx({"iou": 80.0, "precision": 80.0, "recall": 100.0})
    # below 0.5: 16 pixels predicted background, 12 of them are (a: columns 0 and 3, b: rows 2-3), 16 predicted a
    # class, 12 right; from 0.5: 16 of 20 background, 12 of 12 foreground
    assert result["background_precision_per_threshold"] == pytest.approx([0.75] * 9 + [0.8] * 10)
    assert result["foreground_precision_per_threshold"] == pytest.approx([0.75] * 9 + [1.0] * 10)
    # railroad visible as background in a (labelled train): row 3, columns 2-3; column 2 is train only below 0.5
    assert result["confounder_fp"] == {"train/railroad": {"rate": 0.0, "pixels": 2}}
    assert result["confounder_fp_per_threshold"]["train/railroad"] == [0.5] * 9 + [0.0] * 10
    tsv = (tmp_path / "cams.tsv").read_text().splitlines()
    assert tsv[0] == "method\tmetric\tvalue" and "shifted\tbest_threshold\t0.5000" in tsv
    assert "shifted\tconfounder_fp.train/railroad\t0.0000" in tsv


def test_curve_png_is_a_valid_image(hand_world: dict, tmp_path: Path) -> None:
    write_cams(tmp_path / "cams.h5", hand_world["cams"])
    run(EvalCamsSettings(), hand_world["manifest"], tmp_path / "cams.h5", **outputs(tmp_path), method="shifted")
    with Image.open(tmp_path / "curve.png") as image:
        image.verify()
    with Image.open(tmp_path / "curve.png") as image:
        assert image.format == "PNG" and image.size == (500, 350)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["VOC", "cams.h5", "cams.json", "cams.tsv", "curve.png",
                                                          "manifest.json"]


def test_missing_ids_are_an_error_unless_allowed(hand_world: dict, tmp_path: Path) -> None:
    write_cams(tmp_path / "cams.h5", {"a": hand_world["cams"]["a"]})
    with pytest.raises(ValueError, match=r"cams.h5: 1 of 2 images of split train have no CAMs: b"):
        run(EvalCamsSettings(), hand_world["manifest"], tmp_path / "cams.h5", **outputs(tmp_path), method="m")
    assert not (tmp_path / "cams.json").exists()
    result = run(EvalCamsSettings(allow_missing=True), hand_world["manifest"], tmp_path / "cams.h5", **outputs(tmp_path),
                 method="m")
    assert result["missing"] == ["b"] and result["images"] == 1


def test_bad_inputs_named(hand_world: dict, tmp_path: Path) -> None:
    cams = dict(hand_world["cams"], b=(np.array([1]), hand_world["cams"]["b"][1]))  # CAMs for train, labelled cat
    write_cams(tmp_path / "cams.h5", cams)
    with pytest.raises(ValueError, match=r"image 'b' has CAMs for \['train'\] but the manifest labels it \['cat'\]"):
        run(EvalCamsSettings(), hand_world["manifest"], tmp_path / "cams.h5", **outputs(tmp_path), method="m")
    with pytest.raises(ValueError, match="eval.confounders: unknown stuff 'water'"):
        run(EvalCamsSettings(confounders={"train": "water"}), hand_world["manifest"], tmp_path / "cams.h5",
            **outputs(tmp_path), method="m")


@pytest.mark.parametrize("curve, best, edge", [([1.0, 2.0, 3.0], 2, True), ([3.0, 2.0, 1.0], 0, True),
                                               ([3.0, 3.0, 1.0], 0, False), ([1.0, 3.0, 2.0], 1, False),
                                               ([5.0], 0, False), ([float("nan"), 2.0], 1, True)])
def test_a_best_threshold_is_flagged_only_where_the_curve_still_rises_at_an_end(curve, best, edge) -> None:
    assert rising_at_edge(curve, best) is edge
