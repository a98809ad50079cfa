"""pretrain_trunk on the tiny world: it reads only the captions corpus, the loss falls, and the written state dict
loads as ImageNet weights would (frozen BatchNorm, values equal). What captions name: tests/data/test_caption_words.py."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import torch
from PIL import Image

from clims_core.models.backbone import BackboneSpec, ResNetTrunk
from clims_core.stages import pretrain_trunk
from clims_core.stages.pretrain_trunk import PretrainTrunkSettings

CLASSES = ["aeroplane", "bird", "boat", "car", "person", "train"]
STUFF = ["sky", "water", "railroad", "road", "grass"]
WORDS = tuple(CLASSES + STUFF)


@pytest.fixture(scope="module")
def pretrained(tiny_world, tmp_path_factory):
    """A short pretraining on the tiny world's 600 caption images, recording every image file it opens."""
    out = tmp_path_factory.mktemp("trunk")
    settings = PretrainTrunkSettings(
        backbone=BackboneSpec(depth=18, width=8, norm="frozen"), words=WORDS, epochs=4, batch_size=32, lr=0.1,
        warmup_steps=5, image_size=48, holdout_fraction=0.1, seed=0, threads=2)
    opened: list[Path] = []
    real_open = Image.open

    def recording_open(path, *args, **kwargs):
        opened.append(Path(path))
        return real_open(path, *args, **kwargs)

    with mock.patch.object(Image, "open", recording_open):
        metrics = pretrain_trunk.run(settings, tiny_world["captions"], out / "resnet.pth", out / "metrics.json")
    return {"weights": out / "resnet.pth", "metrics": metrics, "opened": opened, "out": out}


def test_reads_only_the_captions_corpus(pretrained, tiny_world):
    images = (tiny_world["captions"] / "images").resolve()
    assert len(pretrained["opened"]) == 600
    assert all(path.resolve().parent == images for path in pretrained["opened"])
    assert pretrained["metrics"]["pairs"] == 600 and pretrained["metrics"]["held_out"] == 60


def test_loss_falls_and_metrics_are_written(pretrained):
    metrics = pretrained["metrics"]
    losses = metrics["loss_per_epoch"]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    on_disk = json.loads((pretrained["out"] / "metrics.json").read_text())
    assert on_disk["words"] == list(WORDS) and set(on_disk["heldout_ap_per_word"]["after"]) == set(WORDS)
    assert 0 <= on_disk["heldout_map"]["after"] <= 100
    assert on_disk["word_frequency"]["person"] > 0 and on_disk["trunk"]["norm"] == "batch"


def test_state_dict_loads_as_imagenet_weights_with_frozen_norm(pretrained):
    state = torch.load(pretrained["weights"], map_location="cpu", weights_only=True)
    assert {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer4.1.bn2.bias"} <= set(state)
    assert not any(key.startswith("fc.") for key in state)
    trunk = ResNetTrunk(BackboneSpec(depth=18, width=8, strides=(2, 2, 2, 1), norm="frozen",
                                     weights=str(pretrained["weights"])))
    loaded = trunk.state_dict()
    assert set(loaded) == {k for k in state if not k.endswith("num_batches_tracked")}
    assert all(torch.equal(loaded[key], state[key]) for key in loaded)
    assert not torch.equal(state["conv1.weight"], ResNetTrunk(BackboneSpec(depth=18, width=8)).conv1.weight), \
        "the stem was not trained"


def test_settings_from_config_builds_the_vocabulary():
    section = {"epochs": 2, "batch_size": 8, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "warmup_steps": 0,
               "image_size": 32, "scale": [0.5, 1.0], "holdout_fraction": 0.1, "workers": 0}
    settings = pretrain_trunk.settings_from_config(section, {"depth": 18, "width": 32}, ["diningtable", "car"],
                                                   ["sky"], {"diningtable": "dining table", "sofa": "couch"},
                                                   device="cpu")
    assert settings.words == ("diningtable", "car", "sky") and settings.names == {"diningtable": "dining table"}
    assert settings.spec() == BackboneSpec(depth=18, width=32, strides=(2, 2, 2, 2), norm="batch")
