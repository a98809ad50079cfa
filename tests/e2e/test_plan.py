"""Planning stays fast at VOC scale: rules run per stage (or shard), never per image."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from clims_core.models.clip import build_clip, save_clip_checkpoint
from tests.conftest import TINY_CLIP_CFG
from tests.e2e.workflow import REPO, planned_jobs, snakemake

N_TRAIN_AUG, N_TRAIN, N_VAL = 10_582, 1_464, 1_449


@pytest.fixture(scope="module")
def fake_voc(tmp_path_factory) -> Path:
    """A VOC tree with VOC's split sizes and tiny images (what planning may look at: lists and folders)."""
    root = tmp_path_factory.mktemp("fakevoc") / "VOC2012"
    for folder in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Segmentation", "ImageSets/SegmentationAug"):
        (root / folder).mkdir(parents=True)
    train_aug = [f"2007_{i:06d}" for i in range(N_TRAIN_AUG)]
    val = [f"2008_{i:06d}" for i in range(N_VAL)]
    tiny = Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8))
    for image_id in train_aug + val:
        tiny.save(root / "JPEGImages" / f"{image_id}.jpg")
    (root / "ImageSets/SegmentationAug/train_aug.txt").write_text("\n".join(train_aug) + "\n")
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(train_aug[:N_TRAIN]) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(val) + "\n")
    return root


def test_voc_scale_plan_is_fast(fake_voc, tmp_path):
    config = yaml.safe_load((REPO / "config" / "voc12.yaml").read_text())
    config["data"]["root"] = str(fake_voc)
    weights = tmp_path / "clip.pt"  # a tiny CLIP checkpoint of ours stands in for OpenAI's ViT-B-16.pt
    save_clip_checkpoint(weights, build_clip(TINY_CLIP_CFG), TINY_CLIP_CFG, {}, 0, model_name="tiny")
    config["clip"].update(model=None, weights=str(weights))
    (tmp_path / "resnet50.pth").write_bytes(b"")  # planning checks that the file exists; nothing loads it
    config["cam"]["backbone_weights"] = str(tmp_path / "resnet50.pth")
    start = time.perf_counter()
    result = snakemake(tmp_path, copy.deepcopy(config), "-n", "--quiet", "rules")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    counts = planned_jobs(result)
    assert counts.get("prepare_data") == 1, result.stdout
    shards = config["cams"]["shards"]
    # Jobs per stage or shard, never per image: that is what keeps planning fast (timed below, not asserted).
    # CAM stores: the train split of every CAM method (eval_cams) and train_aug of every refined method.
    stores = len(config["cam"]["methods"]) + len(config.get("refine", {}).get("methods", ["cam", "clims"]))
    assert counts.get("make_cams") == stores * shards and counts.get("merge_cams") == stores, result.stdout
    assert sum(counts.values()) < 200, result.stdout
    print(f"snakemake -n on {N_TRAIN_AUG} train_aug ids: {elapsed:.2f} s (process start included)")
