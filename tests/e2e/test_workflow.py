"""The whole workflow, for real, on a tiny demo world: every rule that exists runs and leaves its artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clims_core.data.manifest import Manifest
from clims_core.io.masks import load_mask
from clims_core.stages.voc_submission import check_submission
from tests.e2e.conftest import SUBMITTED, TEST_SPLIT
from tests.e2e.workflow import TINY_DEMO, snakemake

pytestmark = pytest.mark.e2e


def test_tiny_demo_runs_end_to_end(tiny_run):
    tmp_path, result = tiny_run.workdir, tiny_run.result
    assert result.returncode == 0, result.stderr[-4000:]
    manifests = list((tmp_path / "results" / "data").glob("*/manifest.json"))
    assert len(manifests) == 1
    manifest = Manifest.load(manifests[0])
    assert len(manifest.ids("train_aug")) == 80 and len(manifest.ids("val")) == 24
    assert set(manifest.ids("train")) <= set(manifest.ids("train_aug")) and len(manifest.ids("train")) == 20
    assert manifest.skipped == []
    assert all(sum(item["labels"]) >= 1 for item in manifest.splits["train_aug"])
    worlds = list((tmp_path / "results" / "demo_world").iterdir())
    assert len(worlds) == 1 and (worlds[0] / "statistics.json").is_file()
    assert json.loads((worlds[0] / "statistics.json").read_text())
    for rule in ("make_demo_world", "prepare_data", "pretrain_clip", "finetune_clip", "eval_clip", "train_cam",
                 "make_cams", "eval_cams", "summary", "report"):
        assert list((tmp_path / "logs" / rule).glob("*.log")), f"no log for {rule}"

    summary = json.loads((tmp_path / "results" / "report" / "summary.json").read_text())
    assert set(summary["clip"]) == {"pretrained", "finetuned"}
    assert 0 <= summary["clip"]["finetuned"]["zero_shot_map"] <= 100
    assert "stuff_test_object_accuracy" in summary["clip"]["pretrained"]
    assert set(summary["cams"]) == {"cam", "puzzlecam", "clims"}
    for method, entry in summary["cams"].items():
        assert 0 <= entry["miou"] <= 100 and set(entry["confounder_fp"]) == {"train/railroad", "boat/water"}, method
    assert set(summary["timings_s"]) >= {"make_demo_world", "prepare_data", "pretrain_clip", "finetune_clip", "eval_clip",
                                         "train_cam_cam", "train_cam_puzzlecam", "train_cam_clims",
                                         *(name for m in ("cam", "puzzlecam", "clims")
                                           for name in (f"make_cams_{m}_train", f"eval_cams_{m}"))}
    assert summary["provenance"]["code_version"] and summary["provenance"]["config"]["demo_world"]["n_val"] == 24
    assert list(summary["seg"]) == ["cct_labeled", "cct_weak_cam", "cct_weak_clims", "deeplab_cam", "deeplab_clims"]
    assert all(summary["seg"][run]["pixel_labeled"] == 0 for run in ("deeplab_cam", "deeplab_clims"))
    table = (tmp_path / "results" / "seg" / "table1.md").read_text()
    assert "| DeepLabV2 on CLIMS pseudo masks alone | 0 | 80 |" in table and "| DeepLabV2 + CLIMS | 0 | 10.6K | 69.3" in table
    # the segment target: the user's three images, each a mask of its own size, by the last run (deeplab_clims)
    segmented = list((tmp_path / "results" / "segment").glob("deeplab_clims-*/index.json"))
    assert len(segmented) == 1
    index = json.loads(segmented[0].read_text())
    assert [Path(e["image"]).name for e in index["images"]] == ["photo0.jpg", "photo1.jpg", "photo2.jpg"]
    for entry, size in zip(index["images"], ((64, 48), (50, 70), (33, 33))):
        assert load_mask(segmented[0].parent / entry["mask"]).shape == size[::-1] and entry["size"] == list(size)
        assert (segmented[0].parent / entry["overlay"]).is_file()
    # the voc_submission target: one archive per submitted run, in the server's layout
    archives = sorted((tmp_path / "results" / "submission").glob("*.tar.gz"))
    assert [a.name.split("-")[0] for a in archives] == SUBMITTED
    for archive in archives:
        check_submission(archive, TEST_SPLIT, len(manifest.classes))
    assert (tmp_path / "results" / "report" / "index.html").is_file()
    assert (tmp_path / "results" / "report" / "figures" / "seg_val_examples.png").is_file()
    checkpoints = sorted((tmp_path / "results" / "clip").glob("*/clip.pt"))
    assert [p.parent.name.split("-")[0] for p in checkpoints] == ["finetune", "pretrain"]

    again = snakemake(tmp_path, tiny_run.config, "-n", "--cores", "2")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_bad_config_stops_before_any_job(tmp_path):
    config = {**TINY_DEMO, "data": {**TINY_DEMO["data"], "on_error": "sometimes"}}
    result = snakemake(tmp_path, config, "--cores", "1")
    assert result.returncode != 0
    assert "config key 'data.on_error': expected one of ['strict', 'skip'], got 'sometimes'" in result.stderr
    assert not (tmp_path / "results").exists()
