"""The refinement stages on a tiny world: IR labels, IRN training, random-walk and CRF masks, their evaluation;
sharded runs merge into exactly the unsharded result, a pool of processes gives the same masks as one process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clims_core.data.manifest import Manifest
from clims_core.io.checkpoint import load_checkpoint
from clims_core.models.backbone import BackboneSpec
from clims_core.models.irn import load_irn_model
from clims_core.refine.crf import CrfSettings
from clims_core.refine.mask_folder import MaskFolder
from clims_core.stages import (cam_to_ir_label, crf_masks, crf_plane, eval_masks, make_cams, make_pseudo_masks,
                               merge_masks, train_cam, train_irn)
from tests.conftest import THREADS, launch_stage

FAST_CRF = CrfSettings(iterations=3)


@pytest.fixture(scope="module")
def cams(tiny_world, tmp_path_factory):
    """A 1-epoch CAM network and its train_aug CAM store (single scale)."""
    out = tmp_path_factory.mktemp("refine_cams")
    backbone = BackboneSpec(depth=18, width=8, norm="batch")
    settings = train_cam.CamTrainSettings(method="cam", backbone=backbone, epochs=1, batch_size=8, lr=0.01, crop=64,
                                          resize_long=(48, 80), threads=THREADS)
    train_cam.run(settings, tiny_world["manifest"], out / "cam.pt", out / "cam.json")
    make_cams.run(make_cams.MakeCamsSettings(split="train_aug", scales=(1.0,), flip=False, threads=THREADS),
                  tiny_world["manifest"], out / "cam.pt", out / "train_aug.h5")
    return {"checkpoint": out / "cam.pt", "store": out / "train_aug.h5", "manifest": tiny_world["manifest"]}


def folder_bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "shards" not in p.parts}


@pytest.fixture(scope="module")
def ir_labels(cams, tmp_path_factory):
    out = tmp_path_factory.mktemp("ir") / "whole"
    settings = cam_to_ir_label.IrLabelSettings(fg_thres=0.3, bg_thres=0.05, crf=FAST_CRF, processes=1)
    result = cam_to_ir_label.run(settings, cams["manifest"], cams["store"], out, out / "index.json", method="cam")
    assert result["images"] == 160
    return out


def test_ir_labels_sharded_in_a_pool_equal_the_whole_run(cams, ir_labels, tmp_path):
    parts = []
    for shard in range(2):
        settings = cam_to_ir_label.IrLabelSettings(fg_thres=0.3, bg_thres=0.05, crf=FAST_CRF, shard=shard, shards=2,
                                                   processes=2)
        parts.append(tmp_path / "shards" / f"{shard + 1}-of-2.json")
        cam_to_ir_label.run(settings, cams["manifest"], cams["store"], tmp_path, parts[-1], method="cam")
    merge_masks.run(parts, tmp_path / "index.json")
    assert folder_bytes(tmp_path) == folder_bytes(ir_labels)
    labels = MaskFolder.load(ir_labels / "index.json")
    stats = labels.index["stats"]
    assert stats["pixels"] == 160 * 64 * 64 and min(stats["foreground"], stats["background"]) > 0
    values = np.unique(np.concatenate([labels.load_mask(i).ravel() for i in labels.ids[:40]]))
    assert set(values.tolist()) <= {0, 1, 2, 3, 4, 5, 6, 255} and 255 in values


def test_missing_cams_are_listed_before_any_work(cams, tiny_world, tmp_path):
    make_cams.run(make_cams.MakeCamsSettings(split="train", scales=(1.0,), flip=False, threads=THREADS),
                  tiny_world["manifest"], cams["checkpoint"], tmp_path / "train.h5")
    with pytest.raises(ValueError, match="120 of 160 images of split train_aug have no CAMs"):
        cam_to_ir_label.run(cam_to_ir_label.IrLabelSettings(crf=FAST_CRF), cams["manifest"], tmp_path / "train.h5",
                            tmp_path / "ir", tmp_path / "ir" / "index.json")
    assert not (tmp_path / "ir" / "index.json").exists()


@pytest.fixture(scope="module")
def irn(cams, ir_labels, tmp_path_factory):
    out = tmp_path_factory.mktemp("irn")
    settings = train_irn.IrnTrainSettings(trunk="cam", epochs=2, batch_size=16, crop=64, radius=5, lr=0.1, threads=THREADS)
    metrics = train_irn.run(settings, cams["manifest"], ir_labels / "index.json", out / "model.pt",
                            out / "metrics.json", cam_checkpoint=cams["checkpoint"], config={"irn": {"crop": 64}})
    return {"checkpoint": out / "model.pt", "metrics": metrics}


def test_irn_trains_only_its_branch_on_the_frozen_cam_trunk(cams, irn):
    history = irn["metrics"]["history"]
    assert irn["metrics"]["steps"] == 2 * (160 // 16)
    assert {"loss", "bg_pos", "fg_pos", "neg"} <= set(history[0])
    assert history[-1]["loss"] < history[0]["loss"]
    trained = load_checkpoint(irn["checkpoint"])["model"]
    cam = load_checkpoint(cams["checkpoint"])["model"]
    trunk = {k.removeprefix("trunk."): v for k, v in trained.items() if k.startswith("trunk.")}
    assert trunk and all(torch.equal(v, cam[f"trunk.{k}"]) for k, v in trunk.items())
    model, payload = load_irn_model(irn["checkpoint"])
    assert payload["architecture"]["crop"] == 64
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 1, 16, 16)


def test_irn_in_two_gloo_processes_matches_one_process(cams, ir_labels, tmp_path):
    """train_irn under torchrun: each process takes half of every global batch, DDP averages the branch's gradients
    (the trunk is frozen and the branch uses GroupNorm, so nothing depends on the per-process batch)."""
    irn = {"trunk": "cam", "epochs": 1, "batch_size": 16, "crop": 64, "scale_range": [0.5, 1.5], "lr": 0.1,
           "weight_decay": 1e-4, "momentum": 0.9, "radius": 5, "workers": 0}
    weights = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        arguments = {"method": "cam", "refine": {"irn": irn}, "cam": {"backbone": {}, "backbone_weights": None},
                     "seed": 0, "device": "cpu", "threads": 1, "checkpoint_every": 0,
                     "manifest": str(cams["manifest"]), "ir_labels": str(ir_labels / "index.json"),
                     "cam_checkpoint": str(cams["checkpoint"]), "checkpoint": str(out / "model.pt"),
                     "metrics": str(out / "metrics.json"), "resume": str(out / "resume.pt")}
        launch_stage("train_irn", arguments, out, processes)
        assert json.loads((out / "metrics.json").read_text())["processes"] == processes
        weights[processes] = load_checkpoint(out / "model.pt")["model"]
    for name, value in weights[1].items():
        assert torch.allclose(value, weights[2][name], rtol=1e-3, atol=1e-5), name


def test_pseudo_masks_sharded_equal_whole_and_are_evaluated(cams, irn, tmp_path):
    whole = tmp_path / "whole"
    settings = make_pseudo_masks.PseudoMaskSettings(split="train_aug", exp_times=5, threads=THREADS)
    make_pseudo_masks.run(settings, cams["manifest"], cams["store"], irn["checkpoint"], whole, whole / "index.json",
                          method="cam")
    parts = []
    for shard in range(2):
        part = make_pseudo_masks.PseudoMaskSettings(split="train_aug", exp_times=5, shard=shard, shards=2, threads=THREADS)
        parts.append(tmp_path / "sharded" / "shards" / f"{shard + 1}-of-2.json")
        make_pseudo_masks.run(part, cams["manifest"], cams["store"], irn["checkpoint"], tmp_path / "sharded",
                              parts[-1], method="cam")
    merge_masks.run(parts, tmp_path / "sharded" / "index.json")
    assert folder_bytes(tmp_path / "sharded") == folder_bytes(whole)
    masks = MaskFolder.load(whole / "index.json")
    manifest = Manifest.load(cams["manifest"])
    assert masks.ids == manifest.ids("train_aug") and masks.index["refiner"] == "irn"
    assert masks.index["stats"]["ignored"] == 0 and masks.index["stats"]["foreground"] > 0
    result = eval_masks.run(eval_masks.EvalMasksSettings(confounders={"train": "railroad"}), cams["manifest"],
                            whole / "index.json", tmp_path / "eval.json", tmp_path / "eval.tsv", "cam", "irn")
    on_disk = json.loads((tmp_path / "eval.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert 0 <= on_disk["miou"] <= 100 and on_disk["images"] == 40
    assert set(on_disk["per_class"]) == {"background", *manifest.classes}
    assert set(on_disk["per_class"]["train"]) == {"iou", "precision", "recall"}
    assert set(on_disk["confounder_fp"]) == {"train/railroad"}
    assert (tmp_path / "eval.tsv").read_text().startswith("method\trefiner\tmetric\tvalue\ncam\tirn\timages\t40\n")


def test_pseudo_masks_with_a_walked_background(cams, irn, tmp_path):
    settings = make_pseudo_masks.PseudoMaskSettings(split="train", exp_times=4, background="walk", alpha=1.0,
                                                    threads=1)
    make_pseudo_masks.run(settings, cams["manifest"], cams["store"], irn["checkpoint"], tmp_path, tmp_path / "index.json")
    masks = MaskFolder.load(tmp_path / "index.json")
    assert len(masks.ids) == 40 and masks.index["config"]["background"] == "walk"
    assert masks.index["stats"]["ignored"] == 0 and masks.index["stats"]["background"] > 0
    with pytest.raises(ValueError, match="background"):
        make_pseudo_masks.PseudoMaskSettings(background="none")


def test_crf_masks_on_the_train_split_are_evaluated(cams, tmp_path):
    settings = crf_masks.CrfMaskSettings(split="train", bg_thres=0.3, crf=FAST_CRF, processes=2)
    crf_masks.run(settings, cams["manifest"], cams["store"], tmp_path, tmp_path / "index.json", method="cam")
    result = eval_masks.run(eval_masks.EvalMasksSettings(), cams["manifest"], tmp_path / "index.json",
                            tmp_path / "eval.json", tmp_path / "eval.tsv", "cam", "crf")
    assert 0 <= result["miou"] <= 100 and result["ignored_fraction"] == 0 and "confounder_fp" not in result


def test_crf_plane_search_scores_each_plane_as_eval_masks_scores_its_masks(cams, tmp_path):
    """The searched plane is the best of the planes tried, and each plane's mIoU is what eval_masks gives the CRF masks
    made at that plane (same CRF, same images, same counting); more background plane, less foreground."""
    planes = (0.15, 0.3, 0.6)
    settings = crf_plane.CrfPlaneSettings(planes=planes, crf=FAST_CRF, processes=2)
    result = crf_plane.run(settings, cams["manifest"], cams["store"], tmp_path / "plane.json", method="cam")
    assert json.loads((tmp_path / "plane.json").read_text()) == result
    assert result["images"] == 40 and result["planes"] == list(planes)
    best = int(np.argmax(result["miou_per_plane"]))
    assert result["best_plane"] == planes[best] and result["miou"] == result["miou_per_plane"][best]
    shares = result["foreground_share_per_plane"]
    assert shares[0] > shares[1] > shares[2] and 0 < result["label_foreground_share"] < 1
    for plane, miou in zip(planes, result["miou_per_plane"]):
        folder = tmp_path / f"masks_{plane}"
        crf_masks.run(crf_masks.CrfMaskSettings(split="train", bg_thres=plane, crf=FAST_CRF), cams["manifest"],
                      cams["store"], folder, folder / "index.json")
        scored = eval_masks.run(eval_masks.EvalMasksSettings(), cams["manifest"], folder / "index.json",
                                folder / "eval.json", folder / "eval.tsv", "cam", "crf")
        assert scored["miou"] == pytest.approx(miou, abs=1e-6)
    few = crf_plane.run(crf_plane.CrfPlaneSettings(planes=(0.3,), images=7, crf=FAST_CRF), cams["manifest"],
                        cams["store"], tmp_path / "few.json")
    assert few["images"] == 7  # every 6th of 40: ids 0, 6, ..., 36
    assert crf_plane.evenly_spaced(list(range(40)), 7) == [0, 6, 12, 18, 24, 30, 36]
    assert crf_plane.evenly_spaced([1, 2], 200) == [1, 2]


@pytest.mark.parametrize("bad, key", [({"planes": ()}, "search_planes"), ({"planes": (0.3, 1.0)}, "search_planes"),
                                      ({"images": 0}, "search_images"), ({"unary": "soft"}, "refine.crf.unary")])
def test_crf_plane_settings_name_the_bad_key(bad, key):
    with pytest.raises(ValueError, match=key):
        crf_plane.CrfPlaneSettings(**bad)


def test_eval_counts_ignored_pixels_as_background(cams, ir_labels, tmp_path):
    """IR labels hold 255: scored like IRNet's eval_sem_seg (ignore -> background), their share reported."""
    result = eval_masks.run(eval_masks.EvalMasksSettings(), cams["manifest"], ir_labels / "index.json",
                            tmp_path / "eval.json", tmp_path / "eval.tsv", "cam", "ir")
    assert result["ignored_fraction"] > 0
    with pytest.raises(ValueError, match="no mask"):
        eval_masks.run(eval_masks.EvalMasksSettings(split="val"), cams["manifest"], ir_labels / "index.json",
                       tmp_path / "e.json", tmp_path / "e.tsv", "cam", "ir")


def test_irn_trunk_auto_is_imagenet_only_with_imagenet_weights():
    cam = {"backbone": {"depth": 18, "width": 8, "strides": [2, 2, 2, 1], "norm": "batch"}, "backbone_weights": None}
    refine = {"irn": {"trunk": "auto", "epochs": 1, "batch_size": 2, "crop": 64, "scale_range": [1.0, 1.0], "lr": 0.1,
                      "weight_decay": 0.0, "momentum": 0.9, "radius": 5, "workers": 0}}
    assert train_irn.settings_from_config(refine, cam, device="cpu").trunk == "cam"
    assert train_irn.resolve_trunk("auto", "weights/resnet50.pth") == "imagenet"
    assert train_irn.resolve_trunk("cam", "weights/resnet50.pth") == "cam"
    with pytest.raises(ValueError, match="backbone spec"):
        train_irn.IrnTrainSettings(trunk="imagenet")
