"""The CLIMS objective: one batched CLIP forward, gradients reach the maps and never CLIP's weights, presets resolve."""

from __future__ import annotations

import pytest
import torch

from clims_core.models.clip import clip_from_config
from clims_core.stages.clims_objective import ClimsObjective
from clims_core.stages.clims_settings import PRESETS, ClimsSettings, resolve_clims_section
from tests.conftest import TINY_CLIP_CFG

CLASSES = ["train", "boat", "car"]


@pytest.fixture(scope="module")
def tiny_clip():
    torch.manual_seed(0)
    return clip_from_config(TINY_CLIP_CFG, "tiny").freeze()


@pytest.mark.parametrize("similarity", ["cosine", "softmax"])
@pytest.mark.parametrize("masking", ["pixel", "imagenet_normalized", "clip_normalized"])
def test_gradients_reach_maps_not_clip(tiny_clip, similarity, masking):
    settings = ClimsSettings(background_words={"train": ["railroad"], "boat": ["water"]}, cbs_threshold=None,
                             cbs_reduction="mean", similarity=similarity, masking=masking)
    objective = ClimsObjective(tiny_clip, CLASSES, settings)
    assert objective.prompts == ["a photo of a train.", "a photo of a boat.", "a photo of a car.",
                                 "a photo of railroad.", "a photo of water."]
    calls = []
    handle = tiny_clip.model.visual.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    logits = torch.zeros(2, 3, 4, 4, requires_grad=True)
    loss, parts = objective(torch.rand(2, 3, 48, 48), torch.sigmoid(logits), torch.tensor([[1.0, 0, 1], [0, 1, 0]]))
    handle.remove()
    assert calls == [6]  # 3 positives -> 3 foreground + 3 background images in ONE forward
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in tiny_clip.model.parameters())
    assert set(parts) >= {"otm", "btm", "cbs", "reg"} and parts["cbs"] > 0


def test_absent_classes_get_no_text_matching_gradient(tiny_clip):
    objective = ClimsObjective(tiny_clip, CLASSES, ClimsSettings(background_words=[], loss_weights=(1, 1, 0, 0)))
    logits = torch.zeros(1, 3, 4, 4, requires_grad=True)
    loss, _ = objective(torch.rand(1, 3, 32, 32), torch.sigmoid(logits), torch.tensor([[0.0, 1, 0]]))
    loss.backward()
    assert logits.grad[0, 0].abs().sum() == 0 and logits.grad[0, 2].abs().sum() == 0
    assert logits.grad[0, 1].abs().sum() > 0


def test_presets_fill_only_null_knobs():
    section = {"preset": "cvpr", "epochs": None, "lr": 0.001, "loss_weights": None, "background_words": None,
               "similarity": "softmax"}
    resolved = resolve_clims_section(section, [], {})
    assert resolved["lr"] == 0.001 and resolved["similarity"] == "softmax"
    assert resolved["epochs"] == 10 and resolved["loss_weights"] == [10.0, 25.0, 29.5, 1.15]
    assert resolved["background_channel"] is True and resolved["background_words"]["train"][0] == "railroad"
    demo = resolve_clims_section({"preset": "improved"}, ["sky", "railroad"], {"train": "railroad"})
    assert demo["background_words"] == ["sky", "railroad"] and demo["cbs_threshold"] == PRESETS["improved"]["cbs_threshold"]
    per_class = resolve_clims_section({"preset": "cvpr"}, ["sky", "railroad"], {"train": "railroad"})
    assert per_class["background_words"] == {"train": ["railroad"]}


def test_bad_knobs_are_named():
    with pytest.raises(ValueError, match="clims similarity"):
        ClimsSettings(similarity="dot")
    with pytest.raises(ValueError, match="clims masking"):
        ClimsSettings(masking="none")
