"""Tags change with settings and inputs; stage code versions cover exactly a stage's own code closure."""

from __future__ import annotations

from clims_core.tags import tag
from clims_core.version import code_version, module_closure, stage_code_version


def test_tag_is_order_independent_and_sensitive():
    assert tag({"a": 1, "b": [1, 2]}) == tag({"b": [1, 2], "a": 1})
    assert tag({"a": 1}) != tag({"a": 2})
    assert tag({"a": 1}, "up1") != tag({"a": 1}, "up2")
    assert len(tag({})) == 8


def test_stage_closure_follows_library_imports_only():
    names = {p.name for p in module_closure("clims_core.stages.prepare_data")}
    assert {"prepare_data.py", "voc.py", "manifest.py", "atomic.py", "masks.py", "version.py"} <= names
    assert "config.py" not in names and "checkpoint.py" not in names
    assert stage_code_version("clims_core.stages.prepare_data").startswith(code_version().split("+")[0] + "+")


def _stage_closures() -> dict[str, set[str]]:
    import pkgutil

    import clims_core.stages as stages
    from clims_core.version import PACKAGE_DIR

    return {m.name: {str(p.relative_to(PACKAGE_DIR)) for p in module_closure(f"clims_core.stages.{m.name}")}
            for m in pkgutil.iter_modules(stages.__path__)}


def _training_closure(method: str) -> set[str]:
    """What one CAM method's training hashes into its rerun trigger (plan/common.smk method_code): train_cam's closure
    and that of the method module train_cam imports by name."""
    from clims_core.version import PACKAGE_DIR

    files = set(module_closure("clims_core.stages.train_cam")) | set(module_closure(f"clims_core.methods.{method}"))
    return {str(p.relative_to(PACKAGE_DIR)) for p in files}


def test_no_stage_imports_another_and_method_code_stays_with_its_stages():
    """Editing one method's objective replans only the stages that train with it (issue 18)."""
    closures = _stage_closures()
    assert len(closures) > 20
    for stage, files in closures.items():
        assert {f for f in files if f.startswith("stages/")} == {f"stages/{stage}.py"}, stage
    clims = {"methods/clims.py", "methods/clims_objective.py", "methods/clims_settings.py", "losses/clims.py"}
    cct = {"methods/cct_objective.py", "losses/cct.py"}
    assert not {s for s, files in closures.items() if files & (clims | {"methods/puzzlecam.py"})}
    assert {s for s, files in closures.items() if files & cct} == {"train_seg"}
    assert {s for s, files in closures.items() if "models/clip.py" in files} == {
        "pretrain_clip", "finetune_clip", "eval_clip"}
    # per CAM method: its own module (and the plain CAM's, which the others build on), nothing of the others
    trainings = {method: _training_closure(method) for method in ("cam", "puzzlecam", "clims")}
    assert clims <= trainings["clims"] and "models/clip.py" in trainings["clims"]
    assert not (clims | {"methods/puzzlecam.py", "models/clip.py"}) & trainings["cam"]
    assert "methods/puzzlecam.py" in trainings["puzzlecam"] and not clims & trainings["puzzlecam"]
    assert "methods/puzzlecam.py" not in trainings["clims"]
    versions = {m: stage_code_version("clims_core.stages.train_cam", f"clims_core.methods.{m}") for m in trainings}
    assert len(set(versions.values())) == 3
