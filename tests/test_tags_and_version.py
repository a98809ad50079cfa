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
