"""Config validation: defaults filled, and each kind of bad value stops with one line naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from clims_core.config import ConfigError, validate_config, validate_schema
from clims_core.models.clip import build_clip, check_clip_weights, save_clip_checkpoint
from tests.conftest import TINY_CLIP_CFG

REPO = Path(__file__).resolve().parent.parent


def voc_config(root: Path) -> dict:
    config = yaml.safe_load((REPO / "config" / "voc12.yaml").read_text())
    config["data"]["root"] = str(root)
    return config


def test_defaults_are_filled():
    filled = validate_schema({"demo_world": {"enabled": True}})
    assert filled["results"] == "results" and filled["device"] == "auto"
    assert filled["demo_world"]["n_train_aug"] == 2000
    assert filled["data"]["on_error"] == "strict" and len(filled["data"]["classes"]) == 20
    assert filled["data"]["splits"]["train_aug"].endswith("train_aug.txt")


def test_both_shipped_configs_validate(voc_tree, tmp_path):
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert validate_config(demo)["demo_world"]["enabled"] is True
    config = voc_config(voc_tree.root)
    config["data"]["splits"] = {s: f"ImageSets/Segmentation/{s}.txt" for s in ("train_aug", "train", "val")}
    check_clip_weights(config["clip"]["model"], None)  # the named architecture exists
    save_clip_checkpoint(tmp_path / "clip.pt", build_clip(TINY_CLIP_CFG), TINY_CLIP_CFG, {}, 0, model_name="tiny")
    config["clip"].update(model=None, weights=str(tmp_path / "clip.pt"))  # stands in for the OpenAI file
    with pytest.raises(ConfigError, match="config key 'cam.backbone_weights': .*resnet50-imagenet.pth does not exist"):
        validate_config(config)
    (tmp_path / "r50.pth").write_bytes(b"")
    config["cam"]["backbone_weights"] = str(tmp_path / "r50.pth")
    with pytest.raises(ConfigError, match="config key 'seg.deeplab.backbone_weights': .*resnet101-imagenet.pth does "
                                          "not exist .*resnet101"):
        validate_config(config)
    (tmp_path / "r101.pth").write_bytes(b"")
    config["seg"]["deeplab"]["backbone_weights"] = str(tmp_path / "r101.pth")
    assert validate_config(config)["data"]["root"] == str(voc_tree.root)
    config["seg"]["deeplab"]["backbone_weights"] = None  # resnet101 without its own weights cannot start from resnet50's
    with pytest.raises(ConfigError, match="config key 'seg.deeplab.backbone_depth': resnet101 is not cam.backbone's "
                                          "resnet50, so it needs its own weights"):
        validate_config(config)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c.update(colour="red"), "config key 'colour' is unknown"),
        (lambda c: c["data"].update(rooot="x"), "config key 'data.rooot' is unknown"),
        (lambda c: c["demo_world"].update(n_val="many"), "config key 'demo_world.n_val': expected integer, got 'many'"),
        (lambda c: c["data"].update(on_error="maybe"), "config key 'data.on_error': expected one of ['strict', 'skip']"),
        (lambda c: c.update(device="tpu"), "config key 'device': expected one of"),
        (lambda c: c.update(precision="fp16"), "config key 'precision': expected one of ['auto', 'bf16', 'fp32']"),
        (lambda c: c["cams"].update(resize="bicubic"), "config key 'cams.resize': expected one of ['pil_bicubic', 'bilinear']"),
        (lambda c: c["refine"]["irn"].update(scale_range=[1.5, 0.5]), "config key 'refine.irn.scale_range': expected [low, high] with low <= high"),
        (lambda c: c["refine"]["irn"].update(scales=[0.5, 1.0]), "config key 'refine.irn.scales' is unknown"),
        (lambda c: c.update(device="cpu", precision="bf16"), "config key 'precision': bf16 autocast runs on CUDA only"),
        (lambda c: c["demo_world"].update(labeled_fraction=1.5), "config key 'demo_world.labeled_fraction'"),
        (lambda c: c["eval"]["confounders"].update(horse="sky"), "config key 'eval.confounders.horse': class 'horse' is not in data.classes"),
        (lambda c: c["eval"]["confounders"].update(train="lava"), "config key 'eval.confounders.train': stuff 'lava'"),
        (lambda c: c["data"].update(root="/somewhere"), "config key 'data.root': expected null when demo_world.enabled"),
        (lambda c: c["data"].update(classes=["train", "unicorn"]), "config key 'demo_world'"),
        (lambda c: c["demo_world"].update(enabled=False), "config key 'data.root': expected the path"),
        (lambda c: c["cam"].update(pretrain_trunk={"scale": [0.9, 0.5]}), "config key 'cam.pretrain_trunk.scale': expected [low, high]"),
        (lambda c: c["refine"]["irn"].update(trunk="imagenet"), "config key 'refine.irn.trunk': imagenet needs cam.backbone_weights"),
        (lambda c: c["refine"]["ir_label"].update(fg_thres="automatic"), "config key 'refine.ir_label.fg_thres': 'automatic' does not match '^auto$'"),
        (lambda c: c["refine"]["crf"].update(bg_thres=1.5), "config key 'refine.crf.bg_thres': 1.5 is greater than or equal to the maximum of 1"),
        (lambda c: c["seg"].update(methods=["cct", "unet"]), "config key 'seg.methods.1': expected one of ['cct', 'deeplab']"),
        (lambda c: c["seg"].update(method="cct"), "config key 'seg.method' is unknown"),
        (lambda c: c["seg"].update(deeplab={"loss": "focal"}), "config key 'seg.deeplab.loss': expected one of ['ce', 'balanced']"),
        (lambda c: c["seg"].update(deeplab={"train": {"scale_range": [2.0, 1.0]}}), "config key 'seg.deeplab.train.scale_range': expected [low, high]"),
        (lambda c: c["seg"].update(deeplab={"backbone_weights": "r101.pth"}), "config key 'seg.deeplab.backbone_weights': r101.pth does not exist"),
        (lambda c: c["seg"].update(deeplab={"backbone_depth": 101}), "config key 'seg.deeplab.backbone_depth': resnet101 is not"),
        (lambda c: c.update(segment={"images": "/no/such/photos"}), "config key 'segment.images': /no/such/photos does not exist"),
        (lambda c: c.update(segment={"overlay": True}), "config key 'segment.overlay' is unknown"),
    ],
)
def test_bad_demo_config_is_one_line_naming_the_key(edit, expected):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["eval"]["confounders"] = {"train": "railroad"}
    edit(config)
    with pytest.raises(ConfigError) as caught:
        validate_config(config)
    message = str(caught.value)
    assert expected in message, message
    assert "\n" not in message


def test_missing_dataset_folder_and_split_list(tmp_path, voc_tree):
    with pytest.raises(ConfigError, match=r"config key 'data.root': dataset folder .*nowhere does not exist"):
        validate_config(voc_config(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"config key 'data.splits.train_aug': list file .*train_aug.txt does not exist"):
        validate_config(voc_config(voc_tree.root))  # voc12.yaml expects ImageSets/SegmentationAug/train_aug.txt


def test_auto_refinement_thresholds_validate():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["refine"].update(ir_label={"fg_thres": "auto", "bg_thres": "auto"}, crf={"bg_thres": "auto"})
    refine = validate_config(config, base_dir=REPO)["refine"]
    assert refine["ir_label"] == {"fg_thres": "auto", "bg_thres": "auto", "bg_precision": 0.98}


def test_validation_does_not_mutate_the_input():
    config = {"demo_world": {"enabled": True}, "data": {"classes": ["train"], "stuff_classes": ["railroad"]},
              "seg": {"init": "random"}}  # the default, imagenet, needs weights files this config does not name
    before = copy.deepcopy(config)
    validate_config(config)
    assert config == before


def test_clip_keys_are_checked_before_any_job(tmp_path, voc_tree):
    config = voc_config(voc_tree.root)
    config["data"]["splits"] = {s: f"ImageSets/Segmentation/{s}.txt" for s in ("train_aug", "train", "val")}
    config["clip"]["weights"] = None
    with pytest.raises(ConfigError, match="config key 'clip.weights': null means pretraining CLIP on a captions corpus"):
        validate_config(config)
    config["clip"] = {"model": "ViT-B-16-quickgelu", "weights": str(tmp_path / "ViT-B-16.pt")}
    with pytest.raises(ConfigError) as caught:
        validate_config(config)
    assert str(caught.value).startswith(f"config key 'clip.weights': {tmp_path / 'ViT-B-16.pt'}: file not found")
    assert "\n" not in str(caught.value) and "local-dir:" in str(caught.value)
    config["clip"] = {"model": "ViT-B-16", "weights": "openai"}
    with pytest.raises(ConfigError, match="config key 'clip.weights'.*offline"):
        validate_config(config)


def test_prompt_templates_are_checked():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["clip"] = {"finetune_settings": {"template": "a photo of {labels}."}}
    with pytest.raises(ConfigError, match=r"config key 'clip.finetune_settings.template': .* may use only \{names\}"):
        validate_config(config)


def test_clims_prompts_and_renames_are_checked():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["cam"]["clims"]["object_prompt"] = "a photo of {label}."
    with pytest.raises(ConfigError, match=r"config key 'cam.clims.object_prompt': .* may use only \{name\}"):
        validate_config(config)
    config["cam"]["clims"].update(object_prompt=None, class_names={"person": "player", "sofa": "couch"})
    with pytest.raises(ConfigError, match=r"config key 'cam.clims.class_names': \['sofa'\] not in data.classes"):
        validate_config(config)


def test_shipped_configs_resolve_to_their_clims_prompts():
    from clims_core.methods.clims_settings import resolve_clims_section

    def clims(path: str) -> dict:
        config = validate_schema(yaml.safe_load((REPO / "config" / path).read_text()))
        return resolve_clims_section(config["cam"]["clims"], config["data"]["stuff_classes"],
                                     config["eval"]["confounders"], config["data"]["classes"])

    voc = clims("voc12.yaml")  # the paper's preset as the CVPR code has it: "a photo of diningtable"
    assert (voc["object_prompt"], voc["background_prompt"], voc["class_names"]) == ("a photo of {name}",
                                                                                   "a photo of {name}", {})
    assert voc["cbs_threshold"] is None and voc["score_clamp"] == "log_domain"
    demo = clims("config.yaml")  # the demo CLIP's caption form, whatever preset improved says
    assert (demo["object_prompt"], demo["background_prompt"], demo["class_names"]) == (
        "a photo of {article} {name}.", "a photo of {name}.", {})


def test_pretrained_trunk_stands_in_for_imagenet_weights(tmp_path, voc_tree):
    """With cam.pretrain_trunk on, the imagenet trunk choices validate without weights; it needs a captions corpus."""
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    demo["cam"]["pretrain_trunk"] = {"enabled": True}
    demo["refine"]["irn"]["trunk"], demo["seg"]["init"] = "imagenet", "imagenet"
    assert validate_config(demo)["cam"]["pretrain_trunk"]["epochs"] >= 1
    config = voc_config(voc_tree.root)
    config["data"]["splits"] = {s: f"ImageSets/Segmentation/{s}.txt" for s in ("train_aug", "train", "val")}
    save_clip_checkpoint(tmp_path / "clip.pt", build_clip(TINY_CLIP_CFG), TINY_CLIP_CFG, {}, 0, model_name="tiny")
    config["clip"].update(model=None, weights=str(tmp_path / "clip.pt"))
    config["cam"].update(backbone_weights=None, pretrain_trunk={"enabled": True})
    with pytest.raises(ConfigError, match=r"config key 'cam.pretrain_trunk.enabled': .* data.captions is null"):
        validate_config(config)


def test_schema_is_package_data_so_a_plain_install_validates():
    import importlib.resources
    import tomllib

    from clims_core.config import SCHEMA_PATH

    shipped = importlib.resources.files("clims_core").joinpath(SCHEMA_PATH.name)
    assert shipped.is_file() and SCHEMA_PATH.parent == Path(importlib.resources.files("clims_core"))
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert SCHEMA_PATH.name in pyproject["tool"]["setuptools"]["package-data"]["clims_core"]


def test_pretrained_trunk_recipe_is_the_overlays_cam_section():
    """The world study's recipe (config/recipes/pretrained_trunk.yaml) measures what the demo overlay trains."""
    overlay = yaml.safe_load((REPO / "config" / "demo_pretrained_trunk.yaml").read_text())
    recipe = yaml.safe_load((REPO / "config" / "recipes" / "pretrained_trunk.yaml").read_text())
    assert recipe == {"cam": overlay["cam"]}
