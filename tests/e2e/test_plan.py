"""Planning stays fast at VOC scale: rules run per stage (or shard), never per image."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.e2e.workflow import (REPO, VOC_SPLITS, demo_config_with, make_fake_voc, planned_jobs, snakemake,
                                voc_plan_config)


@pytest.fixture(scope="module")
def fake_voc(tmp_path_factory) -> Path:
    return make_fake_voc(tmp_path_factory.mktemp("fakevoc") / "VOC2012")


def test_voc_scale_plan_is_fast(fake_voc, tmp_path):
    config = voc_plan_config(fake_voc, tmp_path)
    start = time.perf_counter()
    result = snakemake(tmp_path, copy.deepcopy(config), "-n", "--quiet", "rules")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    counts = planned_jobs(result)
    assert counts.get("prepare_data") == 1, result.stdout
    assert "pretrain_trunk" not in counts, result.stdout  # ImageNet weights are given: nothing stands in for them
    shards = config["cams"]["shards"]
    # Jobs per stage or shard, never per image: that is what keeps planning fast (timed below, not asserted).
    # CAM stores: the train split of every CAM method (eval_cams) and train_aug of every refined method.
    stores = len(config["cam"]["methods"]) + len(config.get("refine", {}).get("methods", ["cam", "clims"]))
    assert counts.get("make_cams") == stores * shards and counts.get("merge_cams") == stores, result.stdout
    assert sum(counts.values()) < 200, result.stdout
    print(f"snakemake -n on {VOC_SPLITS['train_aug']} train_aug ids: {elapsed:.2f} s (process start included)")


def dag_edges(dot: str) -> set[tuple[str, str]]:
    """(rule, rule) edges of ``snakemake --dag``'s DOT output."""
    labels = dict(re.findall(r'^\s*(\d+)\[label = "([^"\\]+)', dot, flags=re.M))
    return {(labels[a], labels[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M)}


def test_demo_plans_pretrain_trunk_only_with_the_overlay(tmp_path):
    """config/demo_pretrained_trunk.yaml makes pretrain_trunk feed every trunk consumer; the default demo has none."""
    plain = snakemake(tmp_path / "plain", demo_config_with({}), "-n", "--quiet", "rules")
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "pretrain_trunk" not in planned_jobs(plain)
    overlay = yaml.safe_load((REPO / "config" / "demo_pretrained_trunk.yaml").read_text())
    assert overlay["cam"]["pretrain_trunk"]["enabled"]
    config = demo_config_with(overlay, {"refine": {"irn": {"trunk": "auto"}}})
    result = snakemake(tmp_path / "trunk", config, "--dag")
    assert result.returncode == 0, result.stderr[-3000:]
    edges = dag_edges(result.stdout)
    assert ("make_demo_world", "pretrain_trunk") in edges
    assert {("pretrain_trunk", rule) for rule in ("train_cam", "train_irn", "train_seg")} <= edges, edges


def test_auto_refinement_thresholds_read_the_cam_evaluation(tmp_path):
    """refine.ir_label / refine.crf / refine.random_walk 'auto' make the refiners wait for eval_cams; hand values do
    not."""
    hand = {"ir_label": {"fg_thres": 0.5, "bg_thres": 0.2}, "crf": {"bg_thres": 0.3}, "random_walk": {"alpha": 1.0}}
    edges = {}
    for name, thresholds in (("hand", hand), ("auto", {"ir_label": {"fg_thres": "auto", "bg_thres": "auto"},
                                                     "crf": {"bg_thres": "auto"}, "random_walk": {"alpha": "auto"}})):
        result = snakemake(tmp_path / name, demo_config_with({"refine": thresholds}), "--dag")
        assert result.returncode == 0, result.stderr[-3000:]
        edges[name] = dag_edges(result.stdout)
    refiners = ("cam_to_ir_label", "crf_masks", "make_pseudo_masks")
    assert {("eval_cams", rule) for rule in refiners} <= edges["auto"]
    assert not {e for e in edges["hand"] if e[0] == "eval_cams" and e[1] in refiners}
    assert not {e for e in edges["hand"] | edges["auto"] if "crf_plane" in e}
    # search: crf_masks waits for crf_plane, which reads the CAMs, not their evaluation
    result = snakemake(tmp_path / "search", demo_config_with({"refine": {**hand, "crf": {"bg_thres": "search"}}}),
                       "--dag")
    assert result.returncode == 0, result.stderr[-3000:]
    search = dag_edges(result.stdout)
    assert {("crf_plane", "crf_masks"), ("make_cams", "crf_plane")} <= search
    assert ("eval_cams", "crf_masks") not in search and ("eval_cams", "crf_plane") not in search


def test_segment_target_plans_and_names_bad_input_before_any_job(tmp_path):
    """segment.images: a folder of images plans one segment job by the last run; an empty folder or a run this config
    does not make stops planning with the key named."""
    photos = tmp_path / "photos"
    photos.mkdir()
    result = snakemake(tmp_path / "empty", demo_config_with({"segment": {"images": str(photos)}}), "-n")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and f"segment.images {photos}: the folder holds no image files" in output, output
    Image.new("RGB", (20, 10)).save(photos / "a.png")
    result = snakemake(tmp_path / "ok", demo_config_with({"segment": {"images": str(photos)}}), "-n", "--quiet",
                       "rules")
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result).get("segment") == 1
    bad_run = demo_config_with({"segment": {"images": str(photos), "run": "deeplab_puzzlecam"}})
    result = snakemake(tmp_path / "bad", bad_run, "-n")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config key 'segment.run': 'deeplab_puzzlecam' is not a segmentation run of this config" in output, output
    assert not (tmp_path / "bad" / "results").exists()
