"""The VOC reader on tiny trees made in the test: labels, sources, and every kind of bad input named with its file."""

from __future__ import annotations

import pytest

from clims_core.data.voc import VocDataset


def record(tree, split, image_id, require_mask=False):
    return VocDataset(tree.root, tree.classes).read_record(split, image_id, require_mask)


def test_labels_from_xml_and_mask(voc_tree):
    b = record(voc_tree, "train", "b", require_mask=True)
    assert not b.problems
    assert (b.width, b.height) == (24, 16)
    assert b.labels == [0, 1, 1] and b.label_source == "annotation"
    assert b.mask == "SegmentationClass/b.png"
    d = record(voc_tree, "train_aug", "d")
    assert d.labels == [1, 1, 0] and d.label_source == "SegmentationClassAug"


def test_ignore_index_is_not_a_label(voc_tree):
    voc_tree.add("x", None, [0, 255, 3])
    assert record(voc_tree, "train", "x").labels == [0, 0, 1]


def test_split_list_keeps_order_and_drops_duplicates(voc_tree):
    voc_tree.split("val", ["e", "a", "e"])
    assert VocDataset(voc_tree.root, voc_tree.classes).read_split("ImageSets/Segmentation/val.txt") == ["e", "a"]


def test_missing_split_list_is_named(voc_tree):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        VocDataset(voc_tree.root, voc_tree.classes).read_split("ImageSets/Segmentation/nope.txt")


@pytest.mark.parametrize(
    "make, file, reason",
    [
        (lambda t: None, "JPEGImages/z.jpg", "missing on disk"),
        (lambda t: (t.add("z", ["cat"]), (t.root / "JPEGImages/z.jpg").write_bytes((t.root / "JPEGImages/z.jpg").read_bytes()[:200])),
         "JPEGImages/z.jpg", "cannot be decoded"),
        (lambda t: (t.root / "JPEGImages/z.jpg").write_bytes(b"not a jpeg at all"), "JPEGImages/z.jpg", "cannot be decoded"),
        (lambda t: t.add("z", ["cat"], [0, 1], mask_size=(20, 16)), "SegmentationClass/z.png", "differs from the image"),
        (lambda t: t.add("z", ["cat"], [0, 7]), "SegmentationClass/z.png", "outside the class list"),
        (lambda t: t.add("z", ["cow"]), "Annotations/z.xml", "not in the class list"),
        (lambda t: t.add("z", []), "Annotations/z.xml", "no labels"),
        (lambda t: t.add("z", None, [0, 255]), "SegmentationClass/z.png", "no labels"),
        (lambda t: t.add("z", None), "Annotations/z.xml", "neither an annotation XML nor a mask"),
        (lambda t: (t.add("z", ["cat"]), (t.root / "Annotations/z.xml").write_text("<annotation><object>")),
         "Annotations/z.xml", "cannot be parsed"),
    ],
    ids=["missing", "truncated-jpeg", "corrupt-jpeg", "mask-size", "mask-label-id", "unknown-class", "no-labels-xml",
         "no-labels-mask", "no-label-source", "bad-xml"],
)
def test_bad_inputs_are_named_with_their_file(voc_tree, make, file, reason):
    make(voc_tree)
    result = record(voc_tree, "train_aug", "z")
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert problem.file.endswith(file) and reason in problem.reason and problem.image_id == "z"
    assert file in str(problem)


def test_pixel_labeled_split_requires_a_mask(voc_tree):
    result = record(voc_tree, "train", "c", require_mask=True)
    assert "mask missing" in result.problems[0].reason
    assert not record(voc_tree, "train_aug", "c").problems
