"""summary.json: benchmark seconds read from Snakemake's TSV, CLIP figures in percent, absent sections left out."""

from __future__ import annotations

import json

import pytest

from clims_core.report.summary import build_summary, read_benchmark_seconds


def test_benchmark_and_clip_sections(tmp_path):
    bench = tmp_path / "b.tsv"
    bench.write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t100\n13.5\t0:00:13\t100\n")
    assert read_benchmark_seconds(bench) == pytest.approx(13.0)
    clip_eval = tmp_path / "clip.json"
    clip_eval.write_text(json.dumps({"pretrained": {"zero_shot_map": 0.812, "stuff_test": {"object_accuracy": 0.95,
                                                                                           "stuff_accuracy": 0.9}}}))
    summary = build_summary(clip_eval=clip_eval, benchmarks={"eval_clip": bench})
    assert summary["clip"]["pretrained"]["zero_shot_map"] == pytest.approx(81.2)
    assert summary["clip"]["pretrained"]["stuff_test_stuff_accuracy"] == pytest.approx(90.0)
    assert summary["timings_s"] == {"eval_clip": 13.0}
    assert "cams" not in summary and build_summary() == {}


def test_bad_benchmark_file_is_named(tmp_path):
    (tmp_path / "x.tsv").write_text("nothing\n")
    with pytest.raises(ValueError, match="x.tsv: not a Snakemake benchmark TSV"):
        read_benchmark_seconds(tmp_path / "x.tsv")


def _eval_json(path, miou, fp=None, **extra):
    result = {"miou": miou, "per_class": {"background": {"iou": 90.0, "precision": 95.0, "recall": 94.0},
                                          "train": {"iou": miou, "precision": 50.0, "recall": 40.0}}, **extra}
    if fp is not None:
        result["confounder_fp"] = {"train/railroad": {"rate": fp, "pixels": 100}}
    path.write_text(json.dumps(result))
    return path


def test_masks_seg_curve_and_provenance_sections(tmp_path):
    cam = _eval_json(tmp_path / "cam.json", 42.0, 0.5, best_threshold=0.3, images=20, thresholds=[0.1, 0.3],
                     miou_per_threshold=[30.0, 42.0])
    mask = _eval_json(tmp_path / "mask.json", 61.0, 0.02)
    seg = tmp_path / "seg.json"
    seg.write_text(json.dumps({"run": "cct_clims", "miou": 70.5, "per_class": {"train": {"iou": 66.0}},
                               "pixel_labeled": 20, "image_labeled": 80}))
    provenance = {"code_version": "0.1.0+abc", "artifacts": [["manifest", "results/data/x"]]}
    summary = build_summary(cam_evals={"cam": cam}, mask_evals={"clims/irn": mask}, seg_evals={"cct_clims": seg},
                            provenance=provenance)
    assert summary["cams"]["cam"]["curve"] == {"thresholds": [0.1, 0.3], "miou": [30.0, 42.0]}
    assert summary["cams"]["cam"]["confounder_fp"] == {"train/railroad": 50.0}
    assert summary["cams"]["cam"]["per_class_recall"]["train"] == 40.0 and summary["cams"]["cam"]["images"] == 20
    assert summary["masks"] == {"clims/irn": {"miou": 61.0, "per_class": {"background": 90.0, "train": 61.0},
                                              "per_class_recall": {"background": 94.0, "train": 40.0},
                                              "confounder_fp": {"train/railroad": 2.0}}}
    assert summary["seg"]["cct_clims"] == {"miou": 70.5, "per_class": {"train": 66.0}, "pixel_labeled": 20,
                                           "image_labeled": 80}
    assert summary["provenance"] == provenance
    empty = build_summary(cam_evals={}, mask_evals={}, seg_evals={}, benchmarks={})
    assert empty == {}  # stages that did not run leave no section


def test_wrong_metrics_file_is_named(tmp_path):
    (tmp_path / "seg.json").write_text(json.dumps({"run": "x"}))
    with pytest.raises(ValueError, match=r"seg.json: eval_seg metrics without the key 'miou'"):
        build_summary(seg_evals={"x": tmp_path / "seg.json"})
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not a metrics JSON file"):
        build_summary(mask_evals={"cam/irn": tmp_path / "broken.json"})


def test_summary_stage_records_the_code_version(tmp_path):
    from clims_core.stages.summary import run
    from clims_core.version import code_version

    summary = run(tmp_path / "summary.json", provenance={"artifacts": [["manifest", "results/data/x"]]})
    assert summary["provenance"] == {"code_version": code_version(), "artifacts": [["manifest", "results/data/x"]]}
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
