"""Segmentation run names: one place says which network and pseudo masks a run has and how tables write it."""

from __future__ import annotations

from clims_core.report.seg_runs import parse_seg_run, seg_run_label, seg_run_names, seg_run_order


def test_run_names_in_table_order_and_parsed_back():
    runs = seg_run_names(["cct", "deeplab"], ["cam", "clims"])
    assert list(runs) == ["cct_labeled", "cct_weak_cam", "cct_weak_clims", "deeplab_cam", "deeplab_clims"]
    assert all(parse_seg_run(name) == value for name, value in runs.items())
    assert list(seg_run_names(["deeplab"], ["clims"])) == ["deeplab_clims"]  # no CCT: no labeled-only run
    assert parse_seg_run("mystery") == ("mystery", None)


def test_labels_and_order():
    assert seg_run_label("cct_labeled") == "CCT (no pseudo masks)"
    assert seg_run_label("cct_weak_puzzlecam") == "CCT + PuzzleCAM pseudo masks"
    assert seg_run_label("deeplab_clims") == "DeepLabV2 on CLIMS pseudo masks alone"
    assert seg_run_label("mystery") == "mystery"
    order = ("cam", "puzzlecam", "clims")
    shuffled = ["deeplab_clims", "mystery", "cct_weak_clims", "deeplab_cam", "cct_labeled", "cct_weak_puzzlecam"]
    assert sorted(shuffled, key=lambda r: seg_run_order(r, order)) == [
        "cct_labeled", "cct_weak_puzzlecam", "cct_weak_clims", "deeplab_cam", "deeplab_clims", "mystery"]
