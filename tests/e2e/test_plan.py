"""Planning stays fast at VOC scale: rules run per stage (or shard), never per image."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from tests.e2e.workflow import VOC_SPLITS, make_fake_voc, planned_jobs, snakemake, voc_plan_config


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
    shards = config["cams"]["shards"]
    # Jobs per stage or shard, never per image: that is what keeps planning fast (timed below, not asserted).
    # CAM stores: the train split of every CAM method (eval_cams) and train_aug of every refined method.
    stores = len(config["cam"]["methods"]) + len(config.get("refine", {}).get("methods", ["cam", "clims"]))
    assert counts.get("make_cams") == stores * shards and counts.get("merge_cams") == stores, result.stdout
    assert sum(counts.values()) < 200, result.stdout
    print(f"snakemake -n on {VOC_SPLITS['train_aug']} train_aug ids: {elapsed:.2f} s (process start included)")
