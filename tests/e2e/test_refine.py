"""The refinement rules in the shared tiny workflow run: every mask folder, evaluation and benchmark they promise."""

from __future__ import annotations

import json

import pytest

from clims_core.data.manifest import Manifest
from clims_core.refine.mask_folder import MaskFolder

pytestmark = pytest.mark.e2e


def test_tiny_run_refines_both_methods_with_both_refiners(tiny_run):
    workdir, result = tiny_run.workdir, tiny_run.result
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = Manifest.load(next((workdir / "results" / "data").glob("*/manifest.json")))
    for rule in ("cam_to_ir_label", "train_irn", "make_pseudo_masks", "crf_masks", "eval_masks"):
        assert list((workdir / "logs" / rule).glob("*.log")), f"no log for {rule}"
    indexes = (workdir / "results" / "masks").glob("*/index.json")
    folders = {path.parent.name.rsplit("-", 1)[0]: path for path in indexes}
    assert set(folders) == {"cam-irn", "cam-crf", "clims-irn", "clims-crf"}
    for name, index in folders.items():
        masks = MaskFolder.load(index)
        split = "train_aug" if name.endswith("irn") else "train"  # TINY_DEMO refines only the train split by CRF
        assert masks.split == split and masks.ids == manifest.ids(split), name
        assert all(masks.mask_path(i).is_file() for i in masks.ids)
        evaluation = json.loads((index.parent / "eval_train.json").read_text())
        assert 0 <= evaluation["miou"] <= 100 and evaluation["images"] == len(manifest.ids("train"))
        assert set(evaluation["confounder_fp"]) == {"train/railroad", "boat/water"}
    irn = list((workdir / "results" / "irn").glob("*/model.pt"))
    assert len(irn) == 2
    summary = json.loads((workdir / "results" / "report" / "summary.json").read_text())
    assert {"train_irn_cam", "train_irn_clims", "cam_to_ir_label_cam", "make_pseudo_masks_clims",
            "crf_masks_cam"} <= set(summary["timings_s"])
