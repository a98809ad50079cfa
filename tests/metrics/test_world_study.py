"""The world study's config composition and per-world summary (clims_core/metrics/world_study.py)."""

from __future__ import annotations

import pytest
import yaml

from clims_core.config import validate_config
from clims_core.metrics.world_study import (WorldSummary, clip_table, downstream_from_evals, downstream_table,
                                            markdown_table, mean, row_from_evals, run_config, spread, summarise,
                                            summarise_downstream, world_names, world_overlays)
from tests.e2e.workflow import REPO

WORLDS = REPO / "config" / "worlds"


def _row(world, seed, cam, clims, cam_fp, clims_fp, recipe="default"):
    return {"world": world, "seed": seed, "recipe": recipe, "size": "reduced",
            "methods": {"cam": {"miou": cam, "fp": cam_fp}, "clims": {"miou": clims, "fp": clims_fp}}}


def test_splits_name_every_world_once_and_expand():
    splits = yaml.safe_load((WORLDS / "splits.yaml").read_text())
    overlays = set(world_overlays(WORLDS))
    assert "splits" not in overlays and len(overlays) >= 6
    assert sorted(splits["tune"] + splits["confirm"]) == sorted(overlays | {"demo"})
    assert not set(splits["tune"]) & set(splits["confirm"])
    assert world_names(WORLDS, ["tune"]) == splits["tune"]
    assert world_names(WORLDS, ["all", "small_parts"]) == splits["tune"] + splits["confirm"]
    with pytest.raises(ValueError, match="unknown world 'atlantis'.*tune / confirm / all"):
        world_names(WORLDS, ["atlantis"])


def test_run_config_orders_size_world_seed_recipe():
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    size = yaml.safe_load((REPO / "config" / "reduced.yaml").read_text())
    crowded = yaml.safe_load((WORLDS / "crowded_96.yaml").read_text())
    four = yaml.safe_load((WORLDS / "four_classes.yaml").read_text())
    recipe = {"cam": {"clims": {"lr": 0.0005}}, "demo_world": {"image_size": 64}}
    config = run_config(base, crowded, size, [recipe], seed=3, methods=["cam", "clims"])
    assert config["demo_world"]["image_size"] == 64          # the recipe is applied last
    assert config["demo_world"]["max_objects"] == 5          # the world's own setting
    assert config["demo_world"]["n_train_aug"] == 800        # the size overlay's
    assert config["seed"] == config["demo_world"]["seed"] == 3
    assert config["cam"]["clims"]["lr"] == 0.0005 and config["cam"]["methods"] == ["cam", "clims"]
    assert run_config(base, crowded, size, [], 0, ["cam"])["demo_world"]["image_size"] == 96  # world beats size
    assert base["demo_world"].get("n_train_aug") != 800      # the base config is not modified
    four_config = run_config(base, four, size, [], 1, ["cam", "clims"])
    validated = validate_config(four_config, base_dir=REPO)  # null drops the base's bird and person pairs
    assert set(validated["eval"]["confounders"]) == {"aeroplane", "boat", "car", "train"}


def test_row_from_evals_rounds_and_skips_undefined_rates():
    evals = {"cam": {"miou": 41.23456, "best_threshold": 0.4,
                     "confounder_fp": {"train/railroad": {"rate": 0.123456}, "boat/water": {"rate": None}}},
             "clims": {"miou": 50.0, "best_threshold": 0.95, "best_at_sweep_edge": True, "confounder_fp": {}}}
    clip = {name: {"zero_shot_map": 0.9, "stuff_test": {"object_accuracy": acc, "stuff_accuracy": 0.5,
                                                        "crops": {"object": 51, "stuff": 60}}}
            for name, acc in (("pretrained", 0.92), ("finetuned", 0.391))}
    row = row_from_evals("small_parts", 2, "default", "reduced", evals, clip)
    assert row == {"world": "small_parts", "seed": 2, "recipe": "default", "size": "reduced",
                   "methods": {"cam": {"miou": 41.23, "fp": {"train/railroad": 12.35}, "best_threshold": 0.4},
                               "clims": {"miou": 50.0, "fp": {}, "best_threshold": 0.95, "best_at_sweep_edge": True}},
                   "clip": {"pretrained": {"zero_shot_map": 90.0, "object_accuracy": 92.0, "stuff_accuracy": 50.0,
                                           "object_crops": 51},
                            "finetuned": {"zero_shot_map": 90.0, "object_accuracy": 39.1, "stuff_accuracy": 50.0,
                                          "object_crops": 51}}}
    (summary,) = summarise([{**row, "methods": {**row["methods"], "clims": row["methods"]["cam"]}}])
    assert summary.clip_object_change == [-52.9]
    assert markdown_table([summary]).endswith("| -52.9 |")


def _clip_row(world, seed, recipe, before, after, crops=50):
    return {"world": world, "seed": seed, "recipe": recipe, "size": "reduced", "methods": {},
            "clip": {"pretrained": {"zero_shot_map": 80.0, "object_accuracy": before, "object_crops": crops},
                     "finetuned": {"zero_shot_map": 84.0, "object_accuracy": after, "object_crops": crops}}}


def test_clip_table_pairs_fine_tuned_with_pretrained_per_seed():
    rows = [_clip_row("a", 0, "ft", 96.0, 90.0), _clip_row("a", 1, "ft", 94.0, 92.0),
            _clip_row("a", 0, "ft", 96.0, 95.0),  # a rerun of seed 0: the last counts
            _clip_row("a", 0, "wise", 96.0, 97.0, crops=400),
            {"world": "b", "seed": 0, "recipe": "ft", "methods": {}, "clip": {"pretrained": {}}}]  # no fine-tuned CLIP
    lines = clip_table(rows).splitlines()
    assert len(lines) == 4
    assert lines[2] == "| a | ft | 2 | 50 | 95.0 | 93.5 | -1.5 ± 0.7 | 80.0 -> 84.0 |"
    assert lines[3] == "| a | wise | 1 | 400 | 96.0 | 97.0 | +1.0 ± 0.0 | 80.0 -> 84.0 |"


def test_summarise_pairs_seeds_and_finds_the_worst_pair():
    rows = [_row("a", 0, 40.0, 45.0, {"p": 10.0, "q": 5.0}, {"p": 4.0, "q": 9.0}),
            _row("a", 1, 50.0, 49.0, {"p": 20.0, "q": 5.0}, {"p": 10.0, "q": 6.0}),
            _row("b", 0, 30.0, 36.0, {"p": 10.0}, {"p": 11.0}),
            _row("a", 2, 45.0, 52.0, {"p": 10.0, "q": 5.0}, {"p": 10.0, "q": 5.0}, recipe="other"),
            {"world": "b", "seed": 1, "recipe": "default", "size": "reduced",
             "methods": {"cam": {"miou": 1, "fp": {}}}}]
    a, b, other = summarise(rows)
    assert (a.world, a.recipe, a.seeds, b.seeds, other.recipe) == ("a", "default", [0, 1], [0], "other")
    assert a.deltas == [5.0, -1.0] and a.wins == 1
    assert a.fp_change == {"p": -8.0, "q": 2.5} and a.worst_pair == ("q", 2.5)
    assert a.fp_change_spread == {"p": pytest.approx(2.83, abs=0.01), "q": pytest.approx(2.12, abs=0.01)}
    assert not a.meets(miou_margin=2.0, fp_margin=2.0)       # q rose 2.5 points
    assert a.meets(miou_margin=2.0, fp_margin=3.0)           # mean delta 2.0
    assert not a.meets(miou_margin=2.1, fp_margin=3.0)
    assert b.meets(3.0, 2.0) and spread(b.deltas) == 0.0
    assert spread([1.0, 3.0]) == pytest.approx(2 ** 0.5)     # sample sd
    table = markdown_table([a, b])
    assert "| a | default | 2 | 45.0 ± 7.1 | 47.0 ± 2.8 | +2.0 ± 4.2 | 1/2 | q +2.5 ± 2.1 | no | - |" in table
    assert "| b | default | 1 | 30.0 ± 0.0 | 36.0 ± 0.0 | +6.0 ± 0.0 | 1/1 | p +1.0 ± 0.0 | yes | - |" in table


def test_a_rerun_seed_counts_once():
    rows = [_row("a", 0, 40.0, 30.0, {}, {}), _row("a", 0, 40.0, 46.0, {}, {})]
    (summary,) = summarise(rows)
    assert summary.deltas == [6.0] and summary.worst_pair is None and mean(summary.method) == 46.0
    assert isinstance(summary, WorldSummary)


def _downstream_row(seed, cams, masks, seg, world="a"):
    row = _row(world, seed, cams[0], cams[1], {}, {})
    row.update(downstream_from_evals({key: {"miou": value} for key, value in masks.items()},
                                     {run: {"miou": value} for run, value in seg.items()}))
    return row


def test_downstream_checks_each_target_on_the_means_over_seeds():
    rows = [_downstream_row(0, (40.0, 50.0), {("cam", "irn"): 45.0, ("cam", "crf"): 39.0, ("clims", "irn"): 56.0,
                                              ("clims", "crf"): 60.0},
                            {"cct_labeled": 70.0, "cct_weak_cam": 72.0, "cct_weak_clims": 71.0}),
            _downstream_row(1, (42.0, 52.0), {("cam", "irn"): 47.0, ("cam", "crf"): 43.0, ("clims", "irn"): 54.0,
                                              ("clims", "crf"): 62.0},
                            {"cct_labeled": 68.0, "cct_weak_cam": 70.0, "cct_weak_clims": 73.0}),
            _row("b", 0, 1.0, 2.0, {}, {})]  # no downstream figures: left out
    assert rows[0]["masks"] == {"cam": {"crf": 39.0, "irn": 45.0}, "clims": {"crf": 60.0, "irn": 56.0}}
    (summary,) = summarise_downstream(rows)
    assert summary.seeds == [0, 1] and summary.masks["cam", "crf"] == [39.0, 43.0]
    checks = summary.checks()
    # cam's CRF masks 41.0 on average against its CAMs' 41.0: not a lift; everything else holds but CCT's margin
    # (clims 72.0 against labeled 69.0 + 2 holds; against + cam 71.0 holds).
    assert checks == {"irn lifts cam": True, "crf lifts cam": False, "irn lifts clims": True,
                      "crf lifts clims": True, "crf: clims >= cam": True, "irn: clims >= cam": True,
                      "CCT: clims >= cam": True, "CCT: clims >= labeled + 2": True}
    assert not summarise_downstream(rows)[0].checks(cct_margin=3.5)["CCT: clims >= labeled + 3.5"]
    table = downstream_table([summary])
    assert ("| a | default | 2 | 41.0 ± 1.4 / 51.0 ± 1.4 | 46.0 ± 1.4 / 55.0 ± 1.4 | 41.0 ± 2.8 / 61.0 ± 1.4 "
            "| 69.0 ± 1.4 / 71.0 ± 1.4 / 72.0 ± 1.4 | 7/8 (not: crf lifts cam) |") in table
