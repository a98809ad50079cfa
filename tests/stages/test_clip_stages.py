"""CLIP stages on a tiny world: pretraining learns (loss and held-out retrieval improve), fine-tuning and the zero-shot
evaluation run end to end and their checkpoints load back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clims_core.data.manifest import Manifest
from clims_core.models.clip import load_clip
from clims_core.stages import eval_clip, finetune_clip, pretrain_clip
from clims_core.training.contrastive import ContrastiveSettings
from tests.conftest import THREADS, TINY_CLIP_CFG, launch_stage


@pytest.fixture(scope="module")
def pretrained(tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    settings = pretrain_clip.PretrainClipSettings(
        training=ContrastiveSettings(epochs=8, batch_size=64, lr=2e-3, weight_decay=0.05, warmup_steps=5,
                                     mask_probability=0.3, seed=0),
        model_cfg=TINY_CLIP_CFG, model_name="tiny", holdout_fraction=0.1, threads=THREADS)
    metrics = pretrain_clip.run(settings, tiny_world["captions"], out / "clip.pt", out / "metrics.json")
    return out / "clip.pt", metrics


def test_pretraining_improves_loss_and_heldout_retrieval(pretrained):
    """Margins that hold on other draws too: over 2 worlds x 2 training seeds the last epoch's loss was 0.78-0.86 of
    the first's and held-out retrieval@1 rose by 0.05-0.13 (3-8 of 60 pairs); a bare "it learned" is asserted."""
    path, metrics = pretrained
    losses = metrics["loss_per_epoch"]
    assert losses[-1] < 0.95 * losses[0], losses
    retrieval = metrics["heldout_retrieval_at_1"]
    assert retrieval["after"] > retrieval["before"], retrieval
    clip = load_clip(None, path)
    assert clip.model_name == "tiny" and clip.image_size == 32


def _finetune(pretrained, tiny_world, out, **settings) -> tuple[dict, dict]:
    """One epoch of the paper's fine-tuning recipe (``settings`` added) into ``out``: (metrics, saved state dict)."""
    out.mkdir(parents=True, exist_ok=True)
    settings = finetune_clip.FinetuneClipSettings(
        training=ContrastiveSettings(epochs=1, batch_size=16, lr=5e-5, weight_decay=1e-3, optimizer="sgd"),
        threads=THREADS, **settings)
    metrics = finetune_clip.run(settings, tiny_world["manifest"], None, str(pretrained[0]), out / "ft.pt",
                                out / "ft.json")
    return metrics, load_clip(None, out / "ft.pt").model.state_dict()


@pytest.fixture(scope="module")
def fine_tuned(pretrained, tiny_world, tmp_path_factory):
    """(metrics, the starting CLIP's state dict, the fine-tuned one) of the paper's fine-tuning."""
    metrics, after = _finetune(pretrained, tiny_world, tmp_path_factory.mktemp("finetune"))
    return metrics, load_clip(None, pretrained[0]).model.state_dict(), after


def test_finetune_writes_a_loadable_checkpoint(fine_tuned):
    metrics, before, after = fine_tuned
    assert metrics["images"] == 160 and len(metrics["loss_per_epoch"]) == 1
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "fine-tuning changed no weight"


def test_finetune_weight_interpolation_saves_the_blend_of_start_and_fine_tuned(pretrained, tiny_world, fine_tuned,
                                                                               tmp_path):
    """WiSE-FT at 0.5: every weight halfway between the starting CLIP and the same fine-tuning's result."""
    _, before, tuned = fine_tuned
    metrics, blended = _finetune(pretrained, tiny_world, tmp_path, weight_interpolation=0.5)
    assert metrics["weight_interpolation"] == 0.5
    moved = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], tuned[k])]
    assert moved
    for key in moved:
        torch.testing.assert_close(blended[key], (before[key] + tuned[key]) / 2, rtol=1e-4, atol=1e-6)


def test_label_texts_name_every_class_in_order(tiny_world):
    manifest = Manifest.load(tiny_world["manifest"])
    texts = finetune_clip.label_texts(manifest, "train_aug", "a photo of {names}.", {"aeroplane": "plane"})
    for text, row in zip(texts, manifest.labels("train_aug")):
        names = ["plane" if c == "aeroplane" else c for c, on in zip(manifest.classes, row) if on]
        assert text == "a photo of " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]) + "."


def test_masked_crop_keeps_only_the_region():
    image = np.full((20, 30, 3), 200, dtype=np.uint8)
    region = np.zeros((20, 30), dtype=bool)
    region[5:10, 10:20] = True
    crop = eval_clip.masked_crop(image, region, 16, margin=0.0)
    assert crop.shape == (3, 16, 16)
    assert crop[:, 8, 8].min() > 150  # centre: the region
    assert crop[:, 0, 8].max() < 30  # above the region: padded black


def test_eval_clip_writes_both_clips_and_the_stuff_test(pretrained, tiny_world, tmp_path):
    results = eval_clip.run(eval_clip.EvalClipSettings(threads=THREADS), tiny_world["manifest"],
                            {"pretrained": (None, str(pretrained[0])), "again": (None, str(pretrained[0]))},
                            tmp_path / "e.json", tmp_path / "e.tsv")
    assert set(results) == {"pretrained", "again"}
    assert results["pretrained"]["zero_shot_map"] == pytest.approx(results["again"]["zero_shot_map"])
    stuff = results["pretrained"]["stuff_test"]
    assert stuff["crops"]["object"] > 20 and stuff["crops"]["stuff"] > 20
    assert 0 <= stuff["object_accuracy"] <= 1 and set(stuff["per_word"]) <= {*tiny_world["settings"].classes,
                                                                              *tiny_world["settings"].stuff_classes}
    for word, shares in stuff["named_as"].items():  # every crop of a word named as some word, its own share = accuracy
        assert sum(shares.values()) == pytest.approx(1.0) and shares.get(word, 0.0) == pytest.approx(stuff["per_word"][word])
        assert list(shares.values()) == sorted(shares.values(), reverse=True)
    assert json.loads((tmp_path / "e.json").read_text())["pretrained"]["prompts"][0] == "a photo of an aeroplane."
    assert (tmp_path / "e.tsv").read_text().startswith("clip\tmetric\tvalue\npretrained\tzero_shot_map\t")


def test_finetune_in_two_gloo_processes_matches_one_process(pretrained, tiny_world, tmp_path):
    """finetune_clip under torchrun: features gathered with autograd, so each process's loss is the global batch's
    and DDP's average is one process's gradient: the weight updates agree up to float summation order."""
    section = {"template": "a photo of {names}.", "epochs": 1, "batch_size": 16, "lr": 0.05, "momentum": 0.9,
               "weight_decay": 1e-3, "mask_probability": 0.0,
               "weight_interpolation": 1.0}
    before = load_clip(None, pretrained[0]).model.state_dict()
    updates = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        arguments = {"section": section, "class_names": {}, "clip": [None, str(pretrained[0])], "seed": 0,
                     "device": "cpu", "threads": 1, "checkpoint_every": 0, "manifest": str(tiny_world["manifest"]),
                     "checkpoint": str(out / "ft.pt"), "metrics": str(out / "ft.json"), "resume": str(out / "r.pt")}
        launch_stage("finetune_clip", arguments, out, processes)
        assert json.loads((out / "ft.json").read_text())["processes"] == processes
        after = load_clip(None, out / "ft.pt").model.state_dict()
        updates[processes] = {k: after[k].float() - before[k].float() for k in before}
    moved = [k for k, d in updates[1].items() if d.norm() > 0]
    assert len(moved) > 10
    for key in moved:
        one, two = updates[1][key], updates[2][key]
        assert (one - two).norm() <= 1e-3 * one.norm(), key


def test_finetune_settings_take_the_masking_share_from_the_config():
    from clims_core.config import validate_config
    from tests.e2e.workflow import demo_config_with

    config = validate_config(demo_config_with({"clip": {"finetune_settings": {"mask_probability": 0.4}}}))
    settings = finetune_clip.settings_from_config(config["clip"]["finetune_settings"], {}, 0, "cpu", 1)
    assert settings.training.mask_probability == 0.4 and settings.training.optimizer == "sgd"
    default = validate_config(demo_config_with())["clip"]["finetune_settings"]
    assert finetune_clip.settings_from_config(default, {}, 0, "cpu", 1).training.mask_probability == 0.0
    assert finetune_clip.settings_from_config(default, {}, 0, "cpu", 1).weight_interpolation == 1.0
    wise = validate_config(demo_config_with({"clip": {"finetune_settings": {"weight_interpolation": 0.5}}}))
    assert finetune_clip.settings_from_config(wise["clip"]["finetune_settings"], {}, 0, "cpu", 1).weight_interpolation == 0.5


def test_named_as_says_what_each_word_was_called():
    words = ["train", "car", "railroad"]
    best = np.array([0, 0, 1, 2, 0, 2])  # two train crops right, one called car; railroad crops: 2 right, 1 train
    truth = np.array([0, 0, 0, 2, 2, 2])
    assert eval_clip.named_as(best, truth, words) == {"train": {"train": 2 / 3, "car": 1 / 3},
                                                      "railroad": {"railroad": 2 / 3, "train": 1 / 3}}
