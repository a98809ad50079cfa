"""voc_submission: test masks in the VOC server's layout, archived and checked; bad layouts and inputs are named."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from clims_core.io.checkpoint import save_checkpoint
from clims_core.models.backbone import BackboneSpec
from clims_core.models.deeplab import DeepLab, DeepLabSpec
from clims_core.models.segmentation import architecture_of
from clims_core.stages import voc_submission
from clims_core.stages.voc_submission import check_submission, server_folder

CLASSES = ["car", "train"]
SIZES = {"2008_000001": (40, 30), "2008_000002": (30, 44)}


@pytest.fixture()
def test_split(tmp_path):
    root = tmp_path / "VOC2012"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for image_id, (w, h) in SIZES.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{image_id}.jpg")
    (root / "ImageSets" / "Segmentation" / "test.txt").write_text("\n".join(SIZES) + "\n")
    torch.manual_seed(0)
    model = DeepLab(DeepLabSpec(BackboneSpec(depth=18, width=8, norm="batch"), len(CLASSES) + 1, rates=(1, 2)))
    save_checkpoint(tmp_path / "model.pt", model.eval().state_dict(), {}, 1, architecture=architecture_of(model))
    return root, tmp_path / "model.pt"


def test_archive_has_the_server_layout(test_split, tmp_path):
    root, checkpoint = test_split
    archive = tmp_path / "sub.tar.gz"
    index = voc_submission.run(voc_submission.SubmissionSettings(device="cpu"), checkpoint, root,
                               "ImageSets/Segmentation/test.txt", CLASSES, tmp_path / "sub", archive, "deeplab_clims")
    assert index["images"] == 2 and index["competition"] == "comp6"
    with tarfile.open(archive) as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert names == [f"results/VOC2012/Segmentation/comp6_test_cls/{i}.png" for i in sorted(SIZES)]
    check_submission(archive, SIZES, len(CLASSES))  # passes again from outside
    for image_id, size in SIZES.items():
        with Image.open(tmp_path / "sub" / server_folder("comp6") / f"{image_id}.png") as png:
            assert png.mode == "P" and png.size == size


def _archive(path, pngs: dict[str, Image.Image], competition: str = "comp6"):
    folder = path.parent / "layout"
    with tarfile.open(path, "w:gz") as tar:
        for image_id, png in pngs.items():
            target = folder / f"{image_id}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            png.save(target)
            tar.add(target, arcname=f"{server_folder(competition)}/{image_id}.png")
    return path


def test_the_layout_check_catches_each_kind_of_mistake(tmp_path):
    good = {i: Image.fromarray(np.zeros((h, w), np.uint8), mode="P") for i, (w, h) in SIZES.items()}
    for png in good.values():
        png.putpalette(voc_submission.voc_colormap().reshape(-1).tolist())
    check_submission(_archive(tmp_path / "ok.tar.gz", good), SIZES, 2)
    cases = {
        "missing": ({"2008_000001": good["2008_000001"]}, "missing"),
        "size": ({**good, "2008_000002": good["2008_000001"]}, "size (40, 30), the image is (30, 44)"),
        "rgb": ({**good, "2008_000001": good["2008_000001"].convert("RGB")}, "not a VOC palette PNG"),
    }
    for name, (pngs, message) in cases.items():
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            check_submission(_archive(tmp_path / f"{name}.tar.gz", pngs), SIZES, 2)
    wrong_index = dict(good)
    wrong_index["2008_000001"] = Image.fromarray(np.full((30, 40), 7, np.uint8), mode="P")
    wrong_index["2008_000001"].putpalette(voc_submission.voc_colormap().reshape(-1).tolist())
    with pytest.raises(ValueError, match="index 7 outside 0..2"):
        check_submission(_archive(tmp_path / "idx.tar.gz", wrong_index), SIZES, 2)
    with pytest.raises(ValueError, match="missing"):  # comp5 folder, checked as comp6
        check_submission(_archive(tmp_path / "c5.tar.gz", good, "comp5"), SIZES, 2)


def test_bad_test_split_is_named_before_any_work(test_split, tmp_path):
    root, checkpoint = test_split
    settings = voc_submission.SubmissionSettings(device="cpu")
    with pytest.raises(ValueError, match="submission.test_list .*nope.txt: no such list file"):
        voc_submission.run(settings, checkpoint, root, "nope.txt", CLASSES, tmp_path / "s", tmp_path / "s.tgz", "x")
    (root / "ImageSets" / "Segmentation" / "test.txt").write_text("2008_000001\n2008_999999\n")
    with pytest.raises(ValueError, match=r"1 test ids have no JPEGImages/<id>.jpg, e.g. \['2008_999999'\]"):
        voc_submission.run(settings, checkpoint, root, "ImageSets/Segmentation/test.txt", CLASSES, tmp_path / "s",
                           tmp_path / "s.tgz", "x")
    assert not (tmp_path / "s").exists() and not (tmp_path / "s.tgz").exists()
    with pytest.raises(ValueError, match="submission.competition: expected one of"):
        voc_submission.SubmissionSettings(competition="comp7")
