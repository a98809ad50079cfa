"""DESIGN.md's claims, checked on a finished full-size demo run (``make claims`` after ``make demo``).

The tiny run of the other end-to-end tests is too small for the claims (at 80 images every gap is noise; the reduced
run of test_claim1_reduced.py asserts only that CLIMS trains without collapsing), and the full run takes about 40
minutes, so these tests read the run's ``summary.json`` and are skipped unless ``CLIMS_DEMO_RESULTS`` names a results
folder. They check the claims with the issues' margins where those are met; two targets are not met and not asserted
(README): boat/water false positives <= 0.6x the plain CAM's, and PuzzleCAM >= the plain CAM.

One run is one draw. How often each margin holds per seed, from the 12-seed study of the default CLIMS recipe
(README "CLIMS on a small CLIP", docs/experiments/clims_lr_otm_cbs_6_seeds_h200.jsonl, H200 fp32, each CLIMS run
against its own seed's CAM): CLIMS - CAM = +6.0 ± 3.6 mIoU (min 0.0), so ">= +3" held in 10 of 12 seeds;
train/railroad <= 0.6x the CAM's in 11 of 12; person/grass below the CAM's in 10 of 12. A failing ``make claims`` on
another machine is therefore a reason to look at the seed study (bench/seed_study.py), not proof of a regression.
No seed spread has been measured for claims 2 and 3 (refinement, CCT): their margins rest on single runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def summary() -> dict:
    folder = os.environ.get("CLIMS_DEMO_RESULTS")
    if not folder:
        pytest.skip("set CLIMS_DEMO_RESULTS to a full demo run's results folder (make claims, after make demo)")
    path = Path(folder) / "report" / "summary.json"
    assert path.is_file(), f"{path}: no summary; run make demo first"
    return json.loads(path.read_text(encoding="utf-8"))


def test_claim1_clims_cams_beat_plain_cams_and_fire_less_on_railroad(summary):
    cam, clims = summary["cams"]["cam"], summary["cams"]["clims"]
    assert clims["miou"] >= cam["miou"] + 3.0
    assert clims["confounder_fp"]["train/railroad"] <= 0.6 * cam["confounder_fp"]["train/railroad"]
    assert clims["confounder_fp"]["person/grass"] < cam["confounder_fp"]["person/grass"]


def test_claim2_refinement_lifts_masks_above_their_cams(summary):
    cams, masks = summary["cams"], summary["masks"]
    for method in ("cam", "clims"):
        assert masks[f"{method}/irn"]["miou"] >= cams[method]["miou"] + 5.0, method
        assert masks[f"{method}/crf"]["miou"] >= cams[method]["miou"], method
    assert masks["clims/irn"]["miou"] > masks["cam/irn"]["miou"]
    assert masks["clims/crf"]["miou"] > masks["cam/crf"]["miou"]


def test_claim3_clims_pseudo_masks_help_cct(summary):
    seg = summary["seg"]
    assert seg["cct_weak_clims"]["miou"] >= seg["cct_labeled"]["miou"] + 2.0
    assert seg["cct_weak_clims"]["miou"] >= seg["cct_weak_cam"]["miou"]
