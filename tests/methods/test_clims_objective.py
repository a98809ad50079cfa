"""The CLIMS objective: one batched CLIP forward, gradients reach the maps and never CLIP's weights, presets resolve."""

from __future__ import annotations

import math

import pytest
import torch

from clims_core.losses.cam import multilabel_loss
from clims_core.models.backbone import BackboneSpec
from clims_core.models.clip import clip_from_config
from clims_core.methods.clims_objective import ClimsObjective
from clims_core.methods.clims_settings import PRESETS, ClimsSettings, resolve_clims_section
from clims_core.methods.clims import ClimsTraining
from clims_core.stages.train_cam import build_model
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



def _parts_with_text(tiny_clip, settings, text_edit, labels=((1.0, 0, 1), (0, 1, 0))):
    """Loss parts of one fixed batch after ``text_edit`` rewrites the objective's prompt features."""
    objective = ClimsObjective(tiny_clip, CLASSES, settings)
    text_edit(objective.text)
    torch.manual_seed(1)
    images, maps = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 4, 4)
    with torch.no_grad():
        return objective(images, maps, torch.tensor(labels))[1]


# (term, its score in the parts): OTM scores the foreground image, BTM the background image; each has its softmax knob.
TERMS = {"otm": "fg_score", "btm": "bg_score"}


@pytest.mark.parametrize("softmax", ["all_prompts", "without_other_classes"])
@pytest.mark.parametrize("term", sorted(TERMS))
def test_a_term_without_other_classes_ignores_look_alike_classes(tiny_clip, term, softmax):
    settings = ClimsSettings(background_words=["railroad", "water"], similarity="softmax",
                             **{f"{term}_softmax": softmax})
    other = next(t for t in TERMS if t != term)

    def car_reads_like_train(text):
        text[2] = text[0]

    labels = ((1.0, 0, 0), (0, 1, 0))  # no car in the batch: only its prompt changes
    plain = _parts_with_text(tiny_clip, settings, lambda text: None, labels)
    look_alike = _parts_with_text(tiny_clip, settings, car_reads_like_train, labels)
    if softmax == "all_prompts":
        assert look_alike[term] != pytest.approx(plain[term], abs=1e-4)  # "car" takes mass from the train's images
    else:
        assert look_alike[term] == pytest.approx(plain[term], abs=1e-6)
        assert look_alike[TERMS[term]] == pytest.approx(plain[TERMS[term]], abs=1e-6)
    assert look_alike[other] != pytest.approx(plain[other], abs=1e-6)  # the other term still scores over all prompts


@pytest.mark.parametrize("cbs_softmax", ["all_prompts", "without_labels"])
def test_cbs_without_labels_ignores_the_images_own_classes(tiny_clip, cbs_softmax):
    settings = ClimsSettings(background_words=["railroad", "water"], similarity="softmax", cbs_threshold=None,
                             cbs_reduction="mean", cbs_softmax=cbs_softmax)

    def train_reads_like_railroad(text):
        text[0] = text[3]

    labels = ((1.0, 0, 1), (1.0, 1, 0))  # train is labelled in both images
    plain = _parts_with_text(tiny_clip, settings, lambda text: None, labels)
    confusable = _parts_with_text(tiny_clip, settings, train_reads_like_railroad, labels)
    if cbs_softmax == "all_prompts":
        assert confusable["cbs"] != pytest.approx(plain["cbs"], abs=1e-4)  # the labelled class shares the mass
    else:
        assert confusable["cbs"] == pytest.approx(plain["cbs"], abs=1e-6)


def test_bad_otm_softmax_is_named():
    with pytest.raises(ValueError, match="clims otm_softmax"):
        ClimsSettings(otm_softmax="others")
    with pytest.raises(ValueError, match="clims btm_softmax"):
        ClimsSettings(btm_softmax="others")


VOC_SOME = ["aeroplane", "boat", "diningtable", "person", "pottedplant", "tvmonitor"]


def _preset_settings(preset: str, classes: list[str]) -> ClimsSettings:
    """``cam.clims`` of a config with only the preset set, resolved and passed on as the train_cam rule does."""
    from clims_core.config import validate_schema
    from clims_core.stages import train_cam

    config = validate_schema({"data": {"classes": classes}, "cam": {"clims": {"preset": preset}}})
    clims = resolve_clims_section(config["cam"]["clims"], [], {}, config["data"]["classes"])
    return train_cam.settings_from_config("clims", config["cam"], clims, device="cpu").clims


def test_presets_give_the_public_codes_prompt_strings(tiny_clip):
    # CVPR code (previous_version/clip_utils.py): 'a photo of {}' over the VOC ids as written, background_dict['bg']
    # the same way; the dict's words are sorted once: boat's five and train's four.
    cvpr = ClimsObjective(tiny_clip, VOC_SOME, _preset_settings("cvpr", VOC_SOME))
    assert cvpr.prompts == ["a photo of aeroplane", "a photo of boat", "a photo of diningtable", "a photo of person",
                            "a photo of pottedplant", "a photo of tvmonitor",
                            "a photo of branches", "a photo of building", "a photo of lake", "a photo of railroad",
                            "a photo of railway", "a photo of river", "a photo of sea", "a photo of tree",
                            "a photo of water"]
    # Later code (clip_utils.py): 'a photo of {}.' with 'dining table', 'player', 'potted plant', 'tv monitor'.
    improved = ClimsObjective(tiny_clip, VOC_SOME, _preset_settings("improved", VOC_SOME))
    assert improved.prompts == ["a photo of aeroplane.", "a photo of boat.", "a photo of dining table.",
                                "a photo of player.", "a photo of potted plant.", "a photo of tv monitor.",
                                "a photo of tree.", "a photo of river.", "a photo of sea.", "a photo of lake.",
                                "a photo of water.", "a photo of railway.", "a photo of railroad.",
                                "a photo of track.", "a photo of stone.", "a photo of rocks."]


def test_preset_renames_only_the_datasets_classes():
    improved = _preset_settings("improved", ["aeroplane", "person", "train"])
    assert improved.class_names == {"person": "player"}
    assert _preset_settings("improved", ["cat", "dog"]).class_names == {}
    assert _preset_settings("cvpr", VOC_SOME).class_names == {}
    given = resolve_clims_section({"preset": "improved", "class_names": {"person": "human"}}, [], {}, ["person"])
    assert given["class_names"] == {"person": "human"}  # a rename given in the config is kept as written


def test_cvpr_loss_on_hand_chosen_cosines_counts_non_positive_scores(tiny_clip):
    """Image with boat and chair; the CLIP features are replaced so each cosine is a number chosen here."""
    classes = ["boat", "chair", "train"]
    settings = _preset_settings("cvpr", classes)
    assert settings.cbs_threshold is None and settings.score_clamp == "log_domain"
    objective = ClimsObjective(tiny_clip, classes, settings)
    # Columns: boat, chair, train, then branches, building, lake, railroad, railway, river, sea, tree, water.
    assert objective.prompts[3:] == [f"a photo of {w}" for w in
                                     ("branches", "building", "lake", "railroad", "railway", "river", "sea", "tree",
                                      "water")]
    objective.text = torch.eye(12, 32)  # similarity = the first 12 feature columns
    features = torch.zeros(4, 32)
    features[0, 0] = 0.3  # boat's foreground image vs "a photo of boat"
    features[0, [4, 5, 8, 9, 11]] = torch.tensor([-0.05, 0.0, 0.2, 0.25, -0.1])  # building lake river sea water
    features[1, 1] = -0.02  # chair's foreground image vs "a photo of chair": the CVPR code's log gives NaN here
    features[2, 0] = 0.1  # boat's background image
    features[3, 1] = -0.2  # chair's background image
    objective.encode_masked = lambda images: features
    maps = torch.full((1, 3, 4, 4), 0.25)
    loss, parts = objective(torch.rand(1, 3, 32, 32), maps, torch.tensor([[1.0, 1.0, 0.0]]))
    # By hand: chair weighs 3 (cal_weights); OTM clamps chair's -0.02 to 1e-4; BTM's -log(1 - s) takes -0.2 as is;
    # CBS (no threshold) is boat's mean over its five words, chair has none; REG is the mean of all maps.
    otm = (-math.log(0.3) + 3 * -math.log(1e-4)) / 2
    btm = (-math.log(1 - 0.1) + 3 * -math.log(1 + 0.2)) / 2
    cbs = -(math.log(1.05) + math.log(1.0) + math.log(0.8) + math.log(0.75) + math.log(1.1)) / 5
    assert parts["otm"] == pytest.approx(otm, rel=1e-5) and parts["btm"] == pytest.approx(btm, rel=1e-5)
    assert parts["cbs"] == pytest.approx(cbs, rel=1e-5) and parts["reg"] == pytest.approx(0.25)
    assert loss.item() == pytest.approx(10 * otm + 25 * btm + 29.5 * cbs + 1.15 * 0.25, rel=1e-5)


def test_classification_weight_adds_the_plain_cams_loss_on_the_same_features(tiny_clip):
    torch.manual_seed(0)
    model = build_model(BackboneSpec(depth=18, width=8, norm="batch"), len(CLASSES), False).eval()
    images, labels = torch.rand(2, 3, 64, 64), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    settings = dict(background_words=["railroad"], similarity="softmax")
    plain = ClimsTraining(model, ClimsObjective(tiny_clip, CLASSES, ClimsSettings(**settings)))
    kept = ClimsTraining(model, ClimsObjective(tiny_clip, CLASSES, ClimsSettings(**settings, classification_weight=0.5)))
    loss0, parts0 = plain(images, labels, 0, 1)
    loss1, parts1 = kept(images, labels, 0, 1)
    expected_cls = multilabel_loss(model(images), labels)
    assert "cls" not in parts0 and parts1["cls"] == pytest.approx(expected_cls.item(), rel=1e-6)
    assert loss1.item() == pytest.approx(loss0.item() + 0.5 * expected_cls.item(), rel=1e-5)
    # the maps the CLIP losses see are the network's activation maps, as without the term
    assert parts1["otm"] == pytest.approx(parts0["otm"], rel=1e-6)
    with pytest.raises(ValueError, match="classification_weight: expected >= 0"):
        ClimsSettings(classification_weight=-1.0)
    with pytest.raises(ValueError, match="cbs_reduction: expected one of"):
        ClimsSettings(cbs_reduction="max")
    with pytest.raises(ValueError, match="any_word sums probabilities"):
        ClimsSettings(cbs_reduction="any_word", similarity="cosine")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_settings_from_config_take_every_knob_of_the_resolved_section(preset):
    section = resolve_clims_section({"preset": preset}, ["sky", "water"], {"boat": "water"}, ["boat", "car"])
    settings = ClimsSettings.from_config(section)
    assert settings.loss_weights == tuple(PRESETS[preset]["loss_weights"])
    assert settings.score_clamp == PRESETS[preset]["score_clamp"]
    assert settings.background_words == section["background_words"]
    changed = ClimsSettings.from_config({**section, "cbs_reduction": "mean", "classification_weight": 2.0})
    assert (changed.cbs_reduction, changed.classification_weight) == ("mean", 2.0)
    with pytest.raises(KeyError, match="masking"):  # a knob the section lacks is an error, never a silent default
        ClimsSettings.from_config({k: v for k, v in section.items() if k != "masking"})


class _RecordingObjective:
    """The CLIMS objective, keeping the maps it was given."""

    def __init__(self, objective: ClimsObjective):
        self.objective, self.settings, self.maps = objective, objective.settings, []

    def __call__(self, images: torch.Tensor, maps: torch.Tensor, labels: torch.Tensor):
        self.maps.append(maps.detach())
        return self.objective(images, maps, labels)


@pytest.mark.parametrize("activation", ["sigmoid", "normalised_cam"])
def test_map_activation_picks_the_maps_clip_scores_and_gradients_reach_the_network(tiny_clip, activation):
    torch.manual_seed(0)
    model = build_model(BackboneSpec(depth=18, width=8, norm="batch"), len(CLASSES), False).eval()
    images, labels = torch.rand(2, 3, 64, 64), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    objective = ClimsObjective(tiny_clip, CLASSES, ClimsSettings(background_words=["railroad"], similarity="softmax",
                                                                 map_activation=activation))
    recorder = _RecordingObjective(objective)
    training = ClimsTraining(model, recorder)  # type: ignore[arg-type]
    loss, _ = training(images, labels, 0, 1)
    scores = model.maps_from(model.features(images)).detach()
    if activation == "sigmoid":
        expected = torch.sigmoid(scores)
    else:  # the maps make_cams outputs: ReLU, each map over its max
        expected = torch.relu(scores) / (torch.relu(scores).amax(dim=(2, 3), keepdim=True) + 1e-5)
        peaks = recorder.maps[0].amax(dim=(2, 3))  # 1 where a map has positive scores, 0 where none
        assert (((peaks - 1).abs() < 1e-3) | (peaks == 0)).all() and (peaks > 0.99).any()
    assert torch.allclose(recorder.maps[0], expected, atol=1e-6)
    loss.backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="clims map_activation: expected one of"):
        ClimsSettings(map_activation="softmax")


def test_btm_hole_dilation_widens_only_the_background_images_hole(tiny_clip):
    masks = torch.zeros(1, 1, 20, 20)
    masks[0, 0, 8:12, 8:12] = 1.0
    exact = ClimsObjective(tiny_clip, CLASSES, ClimsSettings(background_words=["railroad"]))
    dilated = ClimsObjective(tiny_clip, CLASSES, ClimsSettings(background_words=["railroad"], btm_hole_dilation=0.1))
    assert torch.equal(exact.background_hole(masks), masks)
    hole = dilated.background_hole(masks)
    assert hole[0, 0, 6:14, 6:14].min() == 1 and hole.sum() == 64  # 2 px (0.1 of 20) on every side
    torch.manual_seed(0)
    images, maps, labels = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 4, 4), torch.tensor([[1.0, 0, 0], [0, 1, 0]])
    parts = {name: objective(images, maps, labels)[1] for name, objective in (("exact", exact), ("dilated", dilated))}
    assert parts["dilated"]["otm"] == pytest.approx(parts["exact"]["otm"])  # the foreground image is unchanged
    assert parts["dilated"]["btm"] != pytest.approx(parts["exact"]["btm"])
    with pytest.raises(ValueError, match="clims btm_hole_dilation"):
        ClimsSettings(btm_hole_dilation=0.5)
