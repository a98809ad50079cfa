"""DESIGN.md's claim 1 at reduced size, with a fixed seed: CLIMS trains its CAMs and does not collapse them.

The demo config (its CAM and CLIMS recipe) on a smaller world (config/reduced.yaml, tests/e2e/workflow.py
``REDUCED_CLAIM1``), run up to ``eval_cams``: about 3 minutes each, on the default world and on ``small_parts`` (a
world of the family the defaults were not tuned on). What is asserted is what holds with margin at this size, on any machine: CLIMS moves
the maps away from the plain CAM it starts from (a CLIMS that does not train leaves them unchanged), and its mIoU
stays within ``COLLAPSE_MARGIN`` of the CAM's (a CLIMS that trains the wrong way, e.g. floods a class onto its stuff,
loses far more). Over the 10 reduced runs in README "Claim 1 at reduced size" CLIMS minus CAM ranged from +0.2 to
+12.9 mIoU (this config's three seeds: +4.1, +7.7, +12.9, mean 8.2, sd 4.4): "CLIMS beats its CAM" is a likely but
not a certain outcome at 800 images once floats differ between CPUs, so it is not asserted here. It is checked, with
DESIGN.md's margins, on the full demo by ``make claims`` (tests/e2e/test_demo_claims.py), as are the false positives.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.e2e.workflow import REDUCED_CLAIM1, REPO, demo_config_with, snakemake

pytestmark = pytest.mark.e2e

# Points of mIoU CLIMS may lose against its CAM here: 3.2 below the worst of 10 reduced runs (+0.2).
COLLAPSE_MARGIN = 3.0


# The default world and one of the world family's tune worlds (config/worlds/splits.yaml), whose part_scale 0.6 makes
# partial activation harder; the world study gave it CLIMS - CAM = +6.1 and +6.3 mIoU at this size (seeds 0, 1).
WORLDS = {"default": {}, "small_parts": yaml.safe_load((REPO / "config" / "worlds" / "small_parts.yaml").read_text())}


@pytest.mark.parametrize("world", sorted(WORLDS))
def test_clims_trains_the_cams_it_starts_from_without_collapsing_them(tmp_path, world):
    config = demo_config_with(REDUCED_CLAIM1, WORLDS[world])
    result = snakemake(tmp_path, config, "--cores", "2", "--until", "eval_cams", timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    evals = {path.parent.name.split("-")[0]: json.loads(path.read_text())
             for path in (tmp_path / "results" / "cams").glob("*/eval_train.json")}
    assert set(evals) == {"cam", "clims"}
    cam, clims = evals["cam"], evals["clims"]
    fp = {name: 100 * run["confounder_fp"]["train/railroad"]["rate"] for name, run in evals.items()}
    print(f"\nreduced claim 1 ({world}): mIoU cam {cam['miou']:.1f}, clims {clims['miou']:.1f}; "
          f"train/railroad FP cam {fp['cam']:.1f}%, clims {fp['clims']:.1f}%")
    assert clims["miou_per_threshold"] != cam["miou_per_threshold"], "CLIMS left the plain CAM's maps unchanged"
    assert clims["miou"] >= cam["miou"] - COLLAPSE_MARGIN, (cam["miou"], clims["miou"])
    assert set(clims["confounder_fp"]) == set(cam["confounder_fp"]) == {
        f"{c}/{s}" for c, s in config["eval"]["confounders"].items()}
