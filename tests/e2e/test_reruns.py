"""Incremental reruns, read from ``snakemake -n`` plans over a finished tiny run: a changed setting replans its stage
and what follows, never what came before; an unchanged config replans nothing; edited stage code replans that stage.
Also: a finished run wrote only under its results, logs and work folders (and Snakemake's own .snakemake)."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clims_core.config import merge_config
from tests.e2e.conftest import TEST_ROOT, USER_IMAGES
from tests.e2e.workflow import REPO, SNAKEFILE, planned_jobs

UPSTREAM = ("make_demo_world", "prepare_data", "pretrain_clip", "finetune_clip", "eval_clip")


# Snakemake with another copy of clims_core imported in place of the installed (editable) one, whose import hook
# would otherwise win over sys.path.
_WITH_LIBRARY = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '')"
                 ".startswith('__editable__')]; sys.path.insert(0, sys.argv.pop(1)); from snakemake.cli import main; "
                 "main()")


def _dry_run(tiny_run, config: dict, tmp_path: Path, library: Path | None = None,
             quiet: bool = True) -> subprocess.CompletedProcess:
    """Dry-run ``config`` in the finished run's folder (the config file is written beside it, not over it)."""
    assert tiny_run.result.returncode == 0, tiny_run.result.stderr[-3000:]
    import yaml

    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    launcher = ["-c", _WITH_LIBRARY, str(library)] if library else ["-m", "snakemake"]
    command = [sys.executable, *launcher, "--snakefile", str(SNAKEFILE), "--directory", str(tiny_run.workdir),
               "--configfile", str(config_path), "-n", *(("--quiet", "rules") if quiet else ())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result


def _plan(tiny_run, config: dict, tmp_path: Path, library: Path | None = None) -> dict[str, int]:
    """Jobs per rule that ``config`` plans over the finished run."""
    return planned_jobs(_dry_run(tiny_run, config, tmp_path, library))


def _plan_reasons(tiny_run, config: dict, tmp_path: Path) -> dict[str, list[str]]:
    """Each planned rule's jobs' reasons, from the dry run's job blocks (``rule x:`` / ``localrule x:``, ``reason:``)."""
    reasons: dict[str, list[str]] = {}
    rule = None
    for line in _dry_run(tiny_run, config, tmp_path, quiet=False).stdout.splitlines():
        if match := re.match(r"(?:local)?rule (\w+):$", line.strip()):
            rule = match.group(1)
            reasons.setdefault(rule, [])
        elif rule and line.strip().startswith("reason:"):
            reasons[rule].append(line.strip()[len("reason:"):].strip())
    return reasons


def test_unchanged_config_replans_nothing(tiny_run, tmp_path):
    assert _plan(tiny_run, copy.deepcopy(tiny_run.config), tmp_path) == {}


# One edit per config section: (dotted key, new value, rules that must replan, rules that must not). Values are ones
# no config of the tiny run uses. A stage's tag covers the settings it reads, so every replanned job writes into a new
# tag folder; a job replanned for changed params would write over the outputs of the old settings.
SECTION_EDITS = [
    ("clip.pretrain.lr", 0.00123, {"pretrain_clip", "finetune_clip", "eval_clip"}, {"make_demo_world", "prepare_data"}),
    ("clip.finetune_settings.lr", 0.00123, {"finetune_clip", "eval_clip"}, {"pretrain_clip", "prepare_data"}),
    ("cam.train.lr", 0.0123, {"train_cam", "make_cams", "eval_cams"}, set(UPSTREAM)),
    ("cam.puzzlecam.alpha", 1.23, {"train_cam", "make_cams", "eval_cams"},
     {*UPSTREAM, "cam_to_ir_label", "train_irn", "crf_masks"}),  # PuzzleCAM's CAMs are not refined in the tiny run
    ("cams.scales", [1.0, 0.75], {"make_cams", "eval_cams", "cam_to_ir_label", "crf_masks"}, {*UPSTREAM, "train_cam"}),
    # reuse_train changes make_cams[train_aug]'s inputs, so it is in the tag too: the recomputed store gets its own folder
    ("cams.reuse_train", False, {"make_cams", "cam_to_ir_label", "crf_masks"}, {*UPSTREAM, "train_cam"}),
    ("refine.irn.lr", 0.0123, {"train_irn", "make_pseudo_masks"},
     {*UPSTREAM, "train_cam", "make_cams", "cam_to_ir_label", "crf_masks"}),
    ("refine.random_walk.beta", 9.5, {"make_pseudo_masks"}, {*UPSTREAM, "make_cams", "cam_to_ir_label", "train_irn"}),
    ("refine.crf.bg_thres", 0.23, {"crf_masks"}, {*UPSTREAM, "make_cams", "cam_to_ir_label", "train_irn",
                                                   "make_pseudo_masks"}),
    ("seg.train.lr", 0.0123, {"train_seg"}, {*UPSTREAM, "train_cam", "crf_masks", "make_pseudo_masks", "train_deeplab"}),
    ("seg.deeplab.train.lr", 0.000123, {"train_deeplab"}, {*UPSTREAM, "train_cam", "crf_masks", "train_seg"}),
    ("report.figure_classes", ["boat"], {"report"}, {*UPSTREAM, "train_cam", "make_cams", "eval_cams", "train_seg"}),
]


# The run's own records, one per run folder (results/summary.json holds the whole config, the report reads it): they
# are rewritten in place by design, and are the only jobs that may be.
RUN_RECORDS = {"summary", "report", "seg_table"}


def _edited(config: dict, dotted: str, value) -> dict:
    *path, key = dotted.split(".")
    overlay: dict = {key: value}
    for part in reversed(path):
        overlay = {part: overlay}
    return merge_config(copy.deepcopy(config), overlay)


@pytest.mark.parametrize("key, value, replans, stays", SECTION_EDITS, ids=[edit[0] for edit in SECTION_EDITS])
def test_each_section_replans_its_stage_onward_into_new_tag_folders(tiny_run, tmp_path, key, value, replans, stays):
    reasons = _plan_reasons(tiny_run, _edited(tiny_run.config, key, value), tmp_path)
    assert replans <= set(reasons), (key, sorted(reasons))
    assert not stays & set(reasons), (key, sorted(stays & set(reasons)))
    in_place = {rule: why[:200] for rule, whys in reasons.items() for why in whys
                if why.startswith("Params have changed") and rule not in RUN_RECORDS}
    assert not in_place, f"{key}: jobs rerun over their old outputs (a setting their tag does not cover): {in_place}"


def test_refinement_setting_replans_refinement_onward_only(tiny_run, tmp_path):
    config = copy.deepcopy(tiny_run.config)
    config.setdefault("refine", {}).setdefault("ir_label", {})["bg_thres"] = 0.11
    plan = _plan(tiny_run, config, tmp_path)
    assert plan.get("cam_to_ir_label") and plan.get("train_irn") and plan.get("make_pseudo_masks"), plan
    assert not set(plan) & {*UPSTREAM, "train_cam", "make_cams", "eval_cams", "crf_masks"}, plan


def test_clims_loss_weight_replans_clims_training_onward(tiny_run, tmp_path):
    config = copy.deepcopy(tiny_run.config)
    config["cam"]["clims"]["loss_weights"] = [1.0, 1.0, 1.0, 0.5]
    plan = _plan(tiny_run, config, tmp_path)
    assert plan.get("train_cam") == 1 and plan.get("make_cams") and plan.get("eval_cams") == 1, plan
    assert not set(plan) & set(UPSTREAM), plan


def _library_with_edit(tmp_path: Path, module: str) -> Path:
    """A copy of the library with one statement added to ``module`` (a path under clims_core/)."""
    copy_root = tmp_path / "lib"
    shutil.copytree(REPO / "clims_core", copy_root / "clims_core", ignore=shutil.ignore_patterns("__pycache__"))
    source = copy_root / "clims_core" / module
    source.write_text(source.read_text() + "\n_EDITED = True\n")
    return copy_root


def test_edited_stage_code_replans_that_stage(tiny_run, tmp_path):
    """The copy with eval_cams edited, imported first: eval_cams reruns, training not."""
    copy_root = _library_with_edit(tmp_path, "stages/eval_cams.py")
    assert _plan(tiny_run, copy.deepcopy(tiny_run.config), tmp_path, library=REPO) == {}  # the launcher alone changes nothing
    plan = _plan(tiny_run, copy.deepcopy(tiny_run.config), tmp_path, library=copy_root)
    assert plan.get("eval_cams"), plan
    assert not set(plan) & {*UPSTREAM, "train_cam", "make_cams"}, plan


def test_edited_clims_objective_replans_clims_training_onward_only(tiny_run, tmp_path):
    """Editing the method replans CLIMS's training and what follows it; the CLIP stages and the plain CAM's and
    PuzzleCAM's trainings stay (train_cam imports the method's module by name, issue 18)."""
    plan = _plan(tiny_run, copy.deepcopy(tiny_run.config), tmp_path,
                 library=_library_with_edit(tmp_path, "methods/clims_objective.py"))
    assert plan.get("train_cam") == 1 and plan.get("make_cams") and plan.get("eval_cams") == 1, plan
    assert not set(plan) & set(UPSTREAM), plan


def test_run_writes_only_under_its_folders(tiny_run):
    allowed = {"results", "logs", "work", ".snakemake", "config.yaml", USER_IMAGES, TEST_ROOT}  # + the run's inputs
    written = {path.name for path in tiny_run.workdir.iterdir()}
    assert written <= allowed, f"unexpected top-level outputs: {sorted(written - allowed)}"
