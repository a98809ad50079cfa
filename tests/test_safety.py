"""Safety by construction, checked over the source: weights load with ``weights_only=True``, nothing is unpickled,
and no config value can be evaluated as code (no eval/exec, no unsafe YAML loader)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "clims_core").rglob("*.py"), *(REPO / "workflow" / "scripts").glob("*.py"),
                  *(REPO / "bench").glob("*.py")])


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _calls(path: Path) -> list[tuple[str, ast.Call]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [(_dotted(node.func), node) for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _keyword(call: ast.Call, name: str) -> object:
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_unsafe_loading_or_evaluation(path):
    for name, call in _calls(path):
        where = f"{path.relative_to(REPO)}:{call.lineno}"
        if name == "torch.load":
            assert _keyword(call, "weights_only") is True, f"{where}: torch.load without weights_only=True"
        assert name not in ("eval", "exec", "pickle.load", "pickle.loads", "yaml.load", "yaml.unsafe_load"), \
            f"{where}: {name} can run code from a file or config"
        if name in ("np.load", "numpy.load"):
            assert _keyword(call, "allow_pickle") in (None, False), f"{where}: np.load with allow_pickle"


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nstate = torch.load('x.pt')\nvalue = eval('1 + 1')\n")
    names = [name for name, _ in _calls(bad)]
    assert "torch.load" in names and "eval" in names
