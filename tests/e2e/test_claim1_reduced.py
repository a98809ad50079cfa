"""DESIGN.md's claim 1 at reduced size, with a fixed seed: CLIMS CAMs beat the plain CAMs they start from.

The demo config (its CAM and CLIMS recipe) on a smaller world (tests/e2e/workflow.py ``REDUCED_CLAIM1``), run up to
``eval_cams``: about 3 minutes. Only the mIoU direction is asserted: over the reduced runs in README "Claim 1 at
reduced size" CLIMS beat its CAM in every one, while the railroad false positives fell in only half of them (at 800
images the plain CAM's confounding varies too much from seed to seed). Both halves of the claim, with the issue's
margins, are checked on the full demo by ``make claims`` (tests/e2e/test_demo_claims.py).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.workflow import REDUCED_CLAIM1, demo_config_with, snakemake

pytestmark = pytest.mark.e2e


def test_clims_cams_beat_the_plain_cams_they_start_from(tmp_path):
    config = demo_config_with(REDUCED_CLAIM1)
    result = snakemake(tmp_path, config, "--cores", "2", "--until", "eval_cams", timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    evals = {path.parent.name.split("-")[0]: json.loads(path.read_text())
             for path in (tmp_path / "results" / "cams").glob("*/eval_train.json")}
    assert set(evals) == {"cam", "clims"}
    cam, clims = evals["cam"], evals["clims"]
    fp = {name: 100 * run["confounder_fp"]["train/railroad"]["rate"] for name, run in evals.items()}
    print(f"\nreduced claim 1: mIoU cam {cam['miou']:.1f}, clims {clims['miou']:.1f}; train/railroad FP cam "
          f"{fp['cam']:.1f}%, clims {fp['clims']:.1f}%")
    assert clims["miou"] > cam["miou"]
    assert set(clims["confounder_fp"]) == set(cam["confounder_fp"]) == {
        f"{c}/{s}" for c, s in config["eval"]["confounders"].items()}
