"""Incremental reruns, read from ``snakemake -n`` plans over a finished tiny run: a changed setting replans its stage
and what follows, never what came before; an unchanged config replans nothing; edited stage code replans that stage.
Also: a finished run wrote only under its results, logs and work folders (and Snakemake's own .snakemake)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import TEST_ROOT, USER_IMAGES
from tests.e2e.workflow import REPO, SNAKEFILE, planned_jobs

UPSTREAM = ("make_demo_world", "prepare_data", "pretrain_clip", "finetune_clip", "eval_clip")


# Snakemake with another copy of clims_core imported in place of the installed (editable) one, whose import hook
# would otherwise win over sys.path.
_WITH_LIBRARY = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '')"
                 ".startswith('__editable__')]; sys.path.insert(0, sys.argv.pop(1)); from snakemake.cli import main; "
                 "main()")


def _plan(tiny_run, config: dict, tmp_path: Path, library: Path | None = None) -> dict[str, int]:
    """Dry-run ``config`` in the finished run's folder (the config file is written beside it, not over it)."""
    assert tiny_run.result.returncode == 0, tiny_run.result.stderr[-3000:]
    import yaml

    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    launcher = ["-c", _WITH_LIBRARY, str(library)] if library else ["-m", "snakemake"]
    command = [sys.executable, *launcher, "--snakefile", str(SNAKEFILE), "--directory", str(tiny_run.workdir),
               "--configfile", str(config_path), "-n", "--quiet", "rules"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return planned_jobs(result)


def test_unchanged_config_replans_nothing(tiny_run, tmp_path):
    assert _plan(tiny_run, copy.deepcopy(tiny_run.config), tmp_path) == {}


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
