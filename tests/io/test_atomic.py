"""Atomic writes: the final path appears only complete; failures leave nothing behind."""

from __future__ import annotations

import os

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


def test_written_files_get_the_umask_mode_not_owner_only(tmp_path):
    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with atomic_directory(tmp_path / "folder") as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o755
