"""Atomic writes: the final path appears only complete; failures leave nothing behind."""

from __future__ import annotations

import pytest

from clims_core.io.atomic import atomic_directory, atomic_path, write_json


def test_file_appears_only_on_success(tmp_path):
    target = tmp_path / "sub" / "x.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("hello")
        assert not target.exists() and tmp.name.startswith("x.txt.tmp-")
    assert target.read_text() == "hello"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "hello"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.txt"]


def test_directory_replaces_old_one(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old").write_text("old")
    with atomic_directory(target) as tmp:
        (tmp / "new").write_text("new")
        assert (target / "old").exists()
    assert [p.name for p in target.iterdir()] == ["new"]
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(target) as tmp:
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_json_is_canonical(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    write_json(tmp_path / "b.json", {"a": [1, 2], "b": 1})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
