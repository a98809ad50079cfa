"""train_deeplab for real on the tiny demo world: DeepLab learns from pseudo masks alone and eval_seg reads it."""

from __future__ import annotations

import json

import pytest

from clims_core.config import validate_schema
from clims_core.data.manifest import Manifest
from clims_core.data.segmentation import AugmentSettings
from clims_core.io.masks import load_mask
from clims_core.models.backbone import BackboneSpec
from clims_core.models.deeplab import DeepLab
from clims_core.models.segmentation import load_seg_model
from clims_core.stages import eval_seg, train_deeplab
from tests.conftest import THREADS, launch_stage


def _settings(**changes) -> train_deeplab.DeepLabTrainSettings:
    base = dict(run="deeplab_gt", backbone=BackboneSpec(depth=18, width=16, norm="batch"), init="random", rates=(2, 4),
                augment=AugmentSettings(crop=48, base_size=64, scale_range=(0.75, 1.25)), epochs=3, batch_size=8,
                lr=0.05, head_lr_multiplier=1.0, weight_decay=1e-4, device="cpu", threads=THREADS)
    return train_deeplab.DeepLabTrainSettings(**(base | changes))


@pytest.fixture(scope="module")
def trained(tiny_world, noisy_pseudo_masks, tmp_path_factory):
    out = tmp_path_factory.mktemp("deeplab")
    metrics = train_deeplab.run(_settings(), tiny_world["manifest"], noisy_pseudo_masks, out / "model.pt",
                                out / "metrics.json")
    return metrics, out


def test_deeplab_learns_from_pseudo_masks_and_eval_seg_scores_it(trained, tiny_world, tmp_path):
    metrics, out = trained
    manifest = Manifest.load(tiny_world["manifest"])
    n = len(manifest.ids("train_aug"))
    assert metrics["steps"] == 3 * (n // 8) and metrics["image_labeled"] == n and metrics["pixel_labeled"] == 0
    losses = [h["loss"] for h in metrics["history"]]
    print("loss per epoch", [round(v, 3) for v in losses])
    assert losses[-1] < 0.8 * losses[0], losses
    assert json.loads((out / "metrics.json").read_text())["method"] == "deeplab"
    model, payload = load_seg_model(out / "model.pt")
    assert isinstance(model, DeepLab) and payload["architecture"]["method"] == "deeplab"
    result = eval_seg.run(eval_seg.EvalSegSettings(device="cpu", threads=THREADS), tiny_world["manifest"],
                          out / "model.pt", tmp_path / "e.json", tmp_path / "e.tsv", "deeplab_gt",
                          examples_dir=tmp_path / "examples")
    # the report's examples: the first 4 val images' predictions, each at its image's size
    first = manifest.ids("val")[:4]
    assert sorted(p.stem for p in (tmp_path / "examples").iterdir()) == sorted(first)
    for image_id in first:
        assert load_mask(tmp_path / "examples" / f"{image_id}.png").shape == \
            load_mask(manifest.mask_path("val", image_id)).shape
    assert result["method"] == "deeplab" and result["pixel_labeled"] == 0 and result["images"] == len(manifest.ids("val"))
    assert 0 <= result["miou"] <= 100 and set(result["per_class"]) == {"background", *manifest.classes}


def test_balanced_loss_and_the_v3_head_train_too(tiny_world, noisy_pseudo_masks, tmp_path):
    metrics = train_deeplab.run(_settings(loss="balanced", head="v3", rates=None, epochs=1), tiny_world["manifest"],
                                noisy_pseudo_masks, tmp_path / "m.pt", tmp_path / "m.json")
    assert metrics["loss"] == "balanced" and metrics["steps"] > 0
    model, payload = load_seg_model(tmp_path / "m.pt")
    assert payload["architecture"]["head"] == "v3" and tuple(payload["architecture"]["rates"]) == (12, 24, 36)


def test_bad_inputs_fail_before_training(tiny_world, tmp_path):
    bad = tmp_path / "index.json"
    bad.write_text(json.dumps({"split": "train_aug", "ids": [], "masks": {}, "classes": ["x"]}))
    with pytest.raises(ValueError, match="pseudo masks are for classes"):
        train_deeplab.run(_settings(), tiny_world["manifest"], bad, tmp_path / "m.pt", tmp_path / "m.json")
    assert not (tmp_path / "m.pt").exists()
    with pytest.raises(ValueError, match="seg.deeplab.loss: expected one of"):
        _settings(loss="focal")
    with pytest.raises(ValueError, match="seg.init imagenet needs backbone weights"):
        train_deeplab.DeepLabTrainSettings(run="x", backbone=BackboneSpec(depth=18, width=8), init="imagenet")


def test_train_deeplab_from_the_rule_arguments_in_two_gloo_processes(tiny_world, noisy_pseudo_masks, tmp_path):
    """The rule's path (config sections -> settings) under torchrun: DDP over the one-forward objective, the same
    steps as one process. BatchNorm sees per-process batches on CPU, so losses agree roughly, not exactly."""
    config = validate_schema({
        "seg": {"init": "random", "deeplab": {"rates": [2, 4], "train": {
            "epochs": 1, "batch_size": 8, "lr": 0.05, "head_lr_multiplier": 1.0, "crop": 48, "base_size": 64,
            "scale_range": [0.75, 1.25], "workers": 0}}},
        "cam": {"backbone": {"depth": 18, "width": 8, "norm": "batch"}}})
    results = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        arguments = {"run": "deeplab_gt", "seg": config["seg"], "cam": config["cam"], "seed": 0, "device": "cpu",
                     "threads": 1, "checkpoint_every": 0, "manifest": str(tiny_world["manifest"]),
                     "pseudo": str(noisy_pseudo_masks), "init": None, "checkpoint": str(out / "model.pt"),
                     "metrics": str(out / "metrics.json"), "resume": str(out / "resume.pt")}
        launch_stage("train_deeplab", arguments, out, processes)
        results[processes] = json.loads((out / "metrics.json").read_text())
        assert not (out / "resume.pt").exists()
    one, two = results[1], results[2]
    n = len(Manifest.load(tiny_world["manifest"]).ids("train_aug"))
    assert two["processes"] == 2 and one["steps"] == two["steps"] == n // 8
    assert abs(one["history"][0]["loss"] - two["history"][0]["loss"]) <= 0.2 * one["history"][0]["loss"]
