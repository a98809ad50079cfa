"""Each stage's Settings defaults agree with the config schema's: a library user who builds Settings by hand gets what
a workflow user gets from an empty config, so a default lives in one place. The few deliberate differences are listed
below with their reason; any other difference (a schema default changed without its dataclass, or the reverse) fails.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from clims_core.config import validate_schema
from clims_core.methods.clims_settings import resolve_clims_section
from clims_core.stages import (eval_seg, finetune_clip, pretrain_clip, pretrain_trunk, segment, train_cam,
                               train_deeplab, train_irn, train_seg, voc_submission)

CONFIG = validate_schema({})  # the schema's defaults, nothing else
RUNTIME = dict(seed=CONFIG["seed"], device=CONFIG["device"], precision=CONFIG["precision"],
               checkpoint_every=CONFIG["checkpoint_every"])
WEIGHTS = dict(CONFIG["cam"], backbone_weights="imagenet.pth")  # seg.init imagenet (the schema's) needs weights
PREDICT = (CONFIG["seg"]["eval"], CONFIG["refine"]["densecrf"], CONFIG["device"], CONFIG["precision"])

# (stage, field path) -> why the dataclass default differs from the schema's on purpose.
DELIBERATE = {
    # Library callers (tests, notebooks) run in-process; the schema's 2 workers suit the workflow's GPU boxes.
    **{(stage, "workers"): "in-process default" for stage in ("train_cam", "train_puzzlecam", "train_clims",
                                                             "train_irn", "train_seg", "train_deeplab")},
    # Not a default at all: the weights file this test gives (WEIGHTS), as seg.init imagenet requires one.
    ("train_seg", "encoder.backbone.weights"): "given by the test",
    ("train_deeplab", "backbone.weights"): "given by the test",
    # One augmentation dataclass serves CCT (its defaults: 320 px crops of 400 px images at 0.5-2.0) and DeepLab (the
    # schema's seg.deeplab.train: 321 / 500 / 0.5-1.5, DeepLabV2's own).
    **{("train_deeplab", f"augment.{key}"): "shared with CCT" for key in ("crop", "base_size", "scale_range")},
    # The schema says auto, which the config translation resolves (cam without weights); the dataclass takes only a
    # resolved trunk and defaults to IRNet's.
    ("train_irn", "trunk"): "auto is resolved before the dataclass",
    # One ContrastiveSettings serves both CLIP stages, whose schema defaults differ (pretraining warms up and masks,
    # fine-tuning follows the paper's SGD); the dataclass cannot match both.
    ("pretrain_clip", "training.warmup_steps"): "shared with finetune_clip",
    ("pretrain_clip", "training.mask_probability"): "shared with finetune_clip",
    ("finetune_clip", "training.optimizer"): "shared with pretrain_clip",
    # One CamTrainSettings serves all three methods; CLIMS's epochs and lr come from its preset.
    ("train_clims", "epochs"): "the improved preset's, not the plain CAM's",
    ("train_clims", "lr"): "the improved preset's, not the plain CAM's",
    # ClimsSettings' defaults are the project's prompt form and no dataset's words; the improved preset carries the
    # public code's VOC prompt, words and renames (clims_core/methods/clims_settings.py PRESETS).
    ("train_clims", "clims.background_words"): "the preset's VOC words",
    ("train_clims", "clims.object_prompt"): "the public code's prompt",
    ("train_clims", "clims.class_names"): "the public code's VOC renames",
}

STAGES = {
    "segment": lambda: segment.settings_from_config(CONFIG["segment"], *PREDICT, threads=1),
    "voc_submission": lambda: voc_submission.settings_from_config(CONFIG["submission"], *PREDICT, threads=1),
    "eval_seg": lambda: eval_seg.settings_from_config(*PREDICT, threads=1),
    "pretrain_clip": lambda: pretrain_clip.settings_from_config(CONFIG["clip"]["pretrain"], CONFIG["seed"],
                                                                CONFIG["device"], threads=1),
    "finetune_clip": lambda: finetune_clip.settings_from_config(CONFIG["clip"]["finetune_settings"], {},
                                                                CONFIG["seed"], CONFIG["device"], threads=1),
    "pretrain_trunk": lambda: pretrain_trunk.settings_from_config(CONFIG["cam"]["pretrain_trunk"],
                                                                  CONFIG["cam"]["backbone"], ["a"], ["b"], {},
                                                                  **RUNTIME),
    "train_cam": lambda: train_cam.settings_from_config("cam", CONFIG["cam"], None, **RUNTIME),
    "train_puzzlecam": lambda: train_cam.settings_from_config("puzzlecam", CONFIG["cam"], None, **RUNTIME),
    "train_clims": lambda: train_cam.settings_from_config(
        "clims", CONFIG["cam"], resolve_clims_section(CONFIG["cam"]["clims"], [], {}), **RUNTIME),
    "train_irn": lambda: train_irn.settings_from_config(CONFIG["refine"], CONFIG["cam"], **RUNTIME),
    "train_seg": lambda: train_seg.settings_from_config("cct_labeled", CONFIG["seg"], WEIGHTS, **RUNTIME),
    "train_deeplab": lambda: train_deeplab.settings_from_config("deeplab_cam", CONFIG["seg"], WEIGHTS, **RUNTIME),
}


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def differences(settings: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Field path -> (dataclass default, value from the schema's defaults), nested Settings walked into; fields
    without a default (the config must give them) are skipped."""
    found = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if dataclasses.is_dataclass(value):
            found.update(differences(value, f"{prefix}{field.name}."))
            continue
        default = _default(field)
        if default is not dataclasses.MISSING and default != value and field.name != "threads":
            found[f"{prefix}{field.name}"] = (default, value)
    return found


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_settings_defaults_are_the_schema_defaults(stage):
    found = {path: pair for path, pair in differences(STAGES[stage]()).items() if (stage, path) not in DELIBERATE}
    assert not found, f"{stage}: dataclass default != schema default for {found}; align one of them (or list it in " \
                      "DELIBERATE with its reason)"


def test_every_deliberate_difference_is_still_a_difference():
    """A stale entry would hide a later, unintended difference at the same key."""
    for stage, path in DELIBERATE:
        assert path in differences(STAGES[stage]()), (stage, path)


def test_a_changed_default_is_caught():
    changed = dataclasses.replace(STAGES["segment"](), overlays=False)
    assert differences(changed) == {"overlays": (True, False)}
