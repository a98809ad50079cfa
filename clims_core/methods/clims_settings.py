"""CLIMS settings and the config's two presets, free of torch so the workflow can resolve them while it plans."""

from __future__ import annotations

import copy
from dataclasses import MISSING, dataclass, field, fields

from clims_core.checks import require_one_of

MASKINGS = ("pixel", "imagenet_normalized", "clip_normalized")
CBS_REDUCTIONS = ("mean", "sum", "sum_mean", "any_word")  # as clims_core.losses.clims.background_suppression
SCORE_CLAMPS = ("both", "log_domain")  # as clims_core.losses.clims.SCORE_CLAMPS (kept free of torch here)
MAP_ACTIVATIONS = ("sigmoid", "normalised_cam")
CLASS_SOFTMAXES = ("all_prompts", "without_other_classes")  # OTM's and BTM's softmax scopes


@dataclass(frozen=True)
class ClimsSettings:
    """Every knob of CLIMS; the ``cvpr`` and ``improved`` presets of the config are just sets of these values."""

    loss_weights: tuple[float, float, float, float] = (10.0, 24.0, 1.0, 0.2)  # OTM, BTM, CBS, REG
    background_channel: bool = False  # cvpr: the head has a background channel 0 (unused by the losses)
    background_words: dict[str, list[str]] | list[str] = field(default_factory=list)  # per class (cvpr) or global
    cbs_threshold: float | None = 0.26  # improved: only background scores above it count; cvpr: None, all count
    # improved: sum (public code); cvpr: sum_mean (per positive the mean over words); any_word (softmax only): per
    # positive -log(1 - its words' summed probability), so a flood onto one stuff is not diluted by the other words
    cbs_reduction: str = "sum"
    class_weights: dict[str, float] = field(default_factory=dict)  # cvpr: sofa, diningtable, chair x3
    similarity: str = "cosine"  # "cosine" (paper) or "softmax" over the prompt set at CLIP's logit scale
    # The project's own prompt form; the presets carry the public code's strings (PRESETS below).
    object_prompt: str = "a photo of {article} {name}."
    background_prompt: str = "a photo of {name}."
    class_names: dict[str, str] = field(default_factory=dict)  # class id -> the word in its prompt
    # "both": scores clamped into [1e-4, 1 - 1e-4] before every log (the later code); "log_domain": only where the log
    # would be undefined (cvpr; see clims_core.losses.clims, where the CVPR code's NaN for OTM is not reproduced).
    score_clamp: str = "both"
    # "pixel": mask images in [0, 1], then CLIP's own normalisation (correct). Compatibility with the public code only:
    # "imagenet_normalized" (later code: masks ImageNet-normalised images, never applies CLIP's normalisation) and
    # "clip_normalized" (CVPR code: masks CLIP-normalised images, so masked-out pixels are CLIP's mean colour).
    masking: str = "pixel"
    # REG over "all" maps of the batch (the public code: absent classes included, so a present class's area costs
    # little when K is large) or over the "positives" only (each labelled class pays for its own area).
    area: str = "all"
    # CBS's score with ``similarity: softmax``: the stuff words' probabilities over the whole prompt set
    # ("all_prompts"), where the image's own class prompt takes nearly all the mass even when the map spills onto
    # water, so CBS barely pushes; or over the prompt set without the image's labelled classes
    # ("without_labels"): does the foreground image show a background word, beside its own classes?
    cbs_softmax: str = "all_prompts"
    # OTM's score with ``similarity: softmax``: the class's probability over the whole prompt set ("all_prompts"), or
    # over its own prompt and the background words only ("without_other_classes"). With all prompts, classes that
    # share a look compete: a car map that also covers the grey body a car shares with a train reads partly as
    # "train" to CLIP, so OTM can reward the distinctive part alone, the very failure CLIMS is meant to fix.
    otm_softmax: str = "all_prompts"
    # BTM's score with ``similarity: softmax``: the class's probability for the background image over the whole
    # prompt set ("all_prompts"), or over its own prompt and the background words ("without_other_classes", OTM's
    # fix applied to BTM). With all prompts, a car body left in the background reads partly as "train", the class
    # it shares the body with, so BTM need not ask the car map to cover it: a suspect for the partner classes' maps
    # shrinking (the full demo from the pretrained trunk with normalised maps: car recall 69% -> 51%). Measured at
    # reduced size: no gain (README "Which CLIP CLIMS scores with"), so no config sets it.
    btm_softmax: str = "all_prompts"
    # Weight of the plain CAM's multi-label classification loss kept while CLIMS trains (0 in both presets: the
    # paper's CLIMS sees only CLIP's scores of masked images). Above 0 the image labels keep holding each map on what
    # tells its class apart, so CLIP's scores alone can no longer carry a map onto its co-occurring stuff.
    classification_weight: float = 0.0
    # The maps CLIP scores: "sigmoid" of the classifier per pixel (the paper's and both public codes'), or
    # "normalised_cam": ReLU divided by each map's max, the maps make_cams outputs. Started from a trained CAM the
    # sigmoid maps sit near 1 on the object and on its co-occurring stuff alike (other_four, reduced: 0.997 and
    # 0.957 for train and railroad), where the sigmoid's gradient vanishes, so CLIMS cannot rank the object above
    # its stuff in the maps that are used. Measured: a larger gain on the world family at reduced size, not on the
    # full demo (IRN masks 7 points lower), so the demo keeps the sigmoid (README "Which maps CLIMS trains").
    map_activation: str = "sigmoid"
    # BTM's background image blacks out the map dilated by this share of CLIP's input side (0: the map itself, the
    # paper and the public code). An object-shaped hole, with the fringe of object pixels at its edge, still reads as
    # the object (crowded_96, pretrained CLIP: "bird" 22% for the exact hole, 8% dilated by 3 of 96 px), so with
    # the exact hole BTM pays a map to grow a few pixels into its stuff. Not in the paper; at 0.04 it raised mIoU
    # but did not cut the false positives on the runs set aside (README "Which CLIP CLIMS scores with"): unset.
    btm_hole_dilation: float = 0.0

    @classmethod
    def from_config(cls, section: dict) -> ClimsSettings:
        """The resolved ``cam.clims`` section (:func:`resolve_clims_section`) -> settings: each field is the key of
        its name, so a new knob is one field here and one schema key, nothing in between."""
        values = {f.name: section[f.name] for f in fields(cls)}
        values.update(loss_weights=tuple(values["loss_weights"]), class_weights=dict(values["class_weights"]),
                      class_names=dict(values["class_names"]))
        return cls(**values)

    def __post_init__(self) -> None:
        if self.similarity not in ("cosine", "softmax"):
            raise ValueError(f"clims similarity: expected cosine or softmax, got {self.similarity!r}")
        require_one_of("clims masking", self.masking, MASKINGS)
        if self.area not in ("all", "positives"):
            raise ValueError(f"clims area: expected all or positives, got {self.area!r}")
        if self.cbs_softmax not in ("all_prompts", "without_labels"):
            raise ValueError(f"clims cbs_softmax: expected all_prompts or without_labels, got {self.cbs_softmax!r}")
        require_one_of("clims otm_softmax", self.otm_softmax, CLASS_SOFTMAXES)
        require_one_of("clims btm_softmax", self.btm_softmax, CLASS_SOFTMAXES)
        require_one_of("clims score_clamp", self.score_clamp, SCORE_CLAMPS)
        require_one_of("clims map_activation", self.map_activation, MAP_ACTIVATIONS)
        require_one_of("clims cbs_reduction", self.cbs_reduction, CBS_REDUCTIONS)
        if self.cbs_reduction == "any_word" and self.similarity != "softmax":
            raise ValueError("clims cbs_reduction any_word sums probabilities: it needs similarity: softmax")
        if not 0 <= self.btm_hole_dilation < 0.5:
            raise ValueError(f"clims btm_hole_dilation: expected a share of the image side in [0, 0.5), "
                             f"got {self.btm_hole_dilation!r}")
        if self.classification_weight < 0:
            raise ValueError(f"clims classification_weight: expected >= 0, got {self.classification_weight!r}")
        if len(self.loss_weights) != 4:
            raise ValueError("clims loss_weights: expected 4 numbers (OTM, BTM, CBS, REG)")


# The two presets of the config (``cam.clims.preset``); every knob can also be set alone. VOC words as published.
# Prompts exactly as the public code writes them: the CVPR code "a photo of diningtable" (VOC ids as written, no
# article, no period; background words likewise), the later code "a photo of dining table." with its own words for
# four VOC ids, 'player' for person among them (clip_utils.py of each version).
VOC_CLASS_NAMES_IMPROVED = {"diningtable": "dining table", "person": "player", "pottedplant": "potted plant",
                            "tvmonitor": "tv monitor"}
VOC_BACKGROUND_IMPROVED = ["tree", "river", "sea", "lake", "water", "railway", "railroad", "track", "stone", "rocks"]
VOC_BACKGROUND_CVPR = {"boat": ["river", "water", "lake", "sea", "building"],
                       "train": ["railroad", "railway", "branches", "tree"]}


def _own_defaults() -> dict:
    """:class:`ClimsSettings`'s defaults as config values: the later public code's knobs, which are preset
    ``improved``'s (background words aside: they come from the dataset, see :func:`resolve_clims_section`)."""
    values = {}
    for f in fields(ClimsSettings):
        if f.name == "background_words":
            continue
        value = f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]
        values[f.name] = list(value) if isinstance(value, tuple) else value
    return values


PRESETS: dict[str, dict] = {
    # the dataclass's defaults, with the later code's training schedule and its VOC prompt form
    "improved": {"epochs": 15, "batch_size": 16, "lr": 0.00025, **_own_defaults(),
                 "object_prompt": "a photo of {name}.", "class_names": VOC_CLASS_NAMES_IMPROVED},
    "cvpr": {"epochs": 10, "batch_size": 16, "lr": 0.00025, "loss_weights": [10.0, 25.0, 29.5, 1.15],
             "background_channel": True, "cbs_threshold": None, "cbs_reduction": "sum_mean",
             "class_weights": {"sofa": 3.0, "diningtable": 3.0, "chair": 3.0}, "similarity": "cosine",
             "masking": "pixel", "area": "all", "cbs_softmax": "all_prompts", "otm_softmax": "all_prompts",
             "btm_softmax": "all_prompts",
             "object_prompt": "a photo of {name}", "background_prompt": "a photo of {name}", "class_names": {},
             "score_clamp": "log_domain", "classification_weight": 0.0, "map_activation": "sigmoid",
             "btm_hole_dilation": 0.0},
}


def resolve_clims_section(section: dict, stuff_classes: list[str], confounders: dict[str, str],
                          classes: list[str] | None = None) -> dict:
    """The config's ``cam.clims`` with every null knob filled from its preset.

    Background words when not given: the dataset's stuff words (a global list for ``improved``, each class's
    confounder stuff for ``cvpr``) where the dataset has stuff classes, else the published VOC words. A preset's
    class-name renames are kept only for ``classes`` (the dataset's), so the resolved section (and its tag) lists
    only renames that apply; ``classes`` None keeps them all.
    """
    preset = section.get("preset", "improved")
    defaults = copy.deepcopy(PRESETS[preset])  # the resolved section never shares the presets' lists and dicts
    resolved = {key: (value if value is not None else defaults.get(key)) for key, value in section.items()}
    for key, value in defaults.items():
        resolved.setdefault(key, value)
    if resolved.get("background_words") is None:
        if stuff_classes:
            resolved["background_words"] = (list(stuff_classes) if preset == "improved"
                                            else {c: [s] for c, s in confounders.items()})
        else:
            resolved["background_words"] = copy.deepcopy(VOC_BACKGROUND_IMPROVED if preset == "improved"
                                                         else VOC_BACKGROUND_CVPR)
    if section.get("class_names") is None and classes is not None:
        resolved["class_names"] = {c: w for c, w in resolved["class_names"].items() if c in classes}
    return resolved
