"""prepare_data: the manifest's content, strict vs skip, and that skipped inputs are listed, never dropped silently."""

from __future__ import annotations

import json

import pytest

from clims_core.data.manifest import Manifest
from clims_core.stages.prepare_data import DatasetError, PrepareSettings, run
from tests.conftest import THREADS


def settings(tree, **overrides):
    return PrepareSettings(root=tree.root, classes=tree.classes, threads=THREADS, **overrides)


def test_manifest_of_a_good_tree(voc_tree, tmp_path):
    path = tmp_path / "out" / "manifest.json"
    run(settings(voc_tree), path)
    manifest = Manifest.load(path)
    assert manifest.ids("train_aug") == ["a", "b", "c", "d"]
    assert manifest.ids("train") == ["a", "b"] and manifest.ids("val") == ["e"]
    assert manifest.labels("train_aug").tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0]]
    assert manifest.mask_path("train", "a") == voc_tree.root.resolve() / "SegmentationClass" / "a.png"
    raw = json.loads(path.read_text())
    assert [item["label_source"] for item in raw["splits"]["train_aug"]] == ["annotation"] * 3 + ["SegmentationClassAug"]
    assert raw["splits"]["val"][0]["height"] == 16 and raw["skipped"] == []
    assert not list(path.parent.glob("*.tmp-*"))


def test_strict_stops_with_every_problem_listed(voc_tree, tmp_path):
    (voc_tree.root / "JPEGImages" / "c.jpg").write_bytes(b"garbage")
    voc_tree.add("f", ["horse"])
    voc_tree.split("train_aug", ["a", "b", "c", "d", "f", "ghost"])
    with pytest.raises(DatasetError) as caught:
        run(settings(voc_tree), tmp_path / "manifest.json")
    message = str(caught.value)
    assert "3 bad input(s)" in message and "data.on_error: skip" in message
    for fragment in ("c.jpg", "f.xml", "horse", "ghost.jpg", "missing on disk"):
        assert fragment in message
    assert not (tmp_path / "manifest.json").exists()


def test_skip_lists_what_it_left_out(voc_tree, tmp_path):
    (voc_tree.root / "JPEGImages" / "c.jpg").write_bytes(b"garbage")
    path = tmp_path / "manifest.json"
    run(settings(voc_tree, on_error="skip"), path)
    manifest = Manifest.load(path)
    assert manifest.ids("train_aug") == ["a", "b", "d"]
    assert [(s["split"], s["id"]) for s in manifest.skipped] == [("train_aug", "c")]
    assert "cannot be decoded" in manifest.skipped[0]["reason"]


def test_bad_on_error_value():
    with pytest.raises(ValueError, match="on_error"):
        PrepareSettings(root=".", classes=["a"], on_error="ignore")
