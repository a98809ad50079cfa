"""The CLIMS objective for one batch: masked images -> one batched CLIP forward -> OTM, BTM, CBS and REG.

Kept apart from the training loop so it can be tested on hand-made maps and a tiny CLIP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from clims_core.losses.clims import (area_regularization, background_suppression, background_text_matching,
                                     object_text_matching, prompt_probabilities)
from clims_core.models.backbone import imagenet_normalize
from clims_core.models.clip import LoadedClip
from clims_core.models.prompts import display_name, fill


MASKINGS = ("pixel", "imagenet_normalized", "clip_normalized")


@dataclass(frozen=True)
class ClimsSettings:
    """Every knob of CLIMS; the ``cvpr`` and ``improved`` presets of the config are just sets of these values."""

    loss_weights: tuple[float, float, float, float] = (10.0, 24.0, 1.0, 0.2)  # OTM, BTM, CBS, REG
    background_channel: bool = False  # cvpr: the head has a background channel 0 (unused by the losses)
    background_words: dict[str, list[str]] | list[str] = field(default_factory=list)  # per class (cvpr) or global
    cbs_threshold: float | None = 0.26  # improved: only background scores above it count
    cbs_reduction: str = "sum"  # improved: sum (as the public code); cvpr: mean over words
    class_weights: dict[str, float] = field(default_factory=dict)  # cvpr: sofa, diningtable, chair x3
    similarity: str = "cosine"  # "cosine" (paper) or "softmax" over the prompt set at CLIP's logit scale
    object_prompt: str = "a photo of {article} {name}."
    background_prompt: str = "a photo of {name}."
    class_names: dict[str, str] = field(default_factory=dict)
    # "pixel": mask images in [0, 1], then CLIP's own normalisation (correct). Compatibility with the public code only:
    # "imagenet_normalized" (later code: masks ImageNet-normalised images, never applies CLIP's normalisation) and
    # "clip_normalized" (CVPR code: masks CLIP-normalised images, so masked-out pixels are CLIP's mean colour).
    masking: str = "pixel"

    def __post_init__(self) -> None:
        if self.similarity not in ("cosine", "softmax"):
            raise ValueError(f"clims similarity: expected cosine or softmax, got {self.similarity!r}")
        if self.masking not in MASKINGS:
            raise ValueError(f"clims masking: expected one of {MASKINGS}, got {self.masking!r}")
        if len(self.loss_weights) != 4:
            raise ValueError("clims loss_weights: expected 4 numbers (OTM, BTM, CBS, REG)")


class ClimsObjective:
    """Precomputes the text side once (CLIP is frozen) and scores batches of activation maps."""

    def __init__(self, clip: LoadedClip, classes: list[str], settings: ClimsSettings):
        self.clip, self.classes, self.settings = clip, classes, settings
        words = settings.background_words
        self.background_words = sorted({w for ws in words.values() for w in ws}) if isinstance(words, dict) else list(words)
        # applies[c, b]: does background word b count for class c?
        applies = torch.zeros(len(classes), len(self.background_words), dtype=torch.bool)
        for c, name in enumerate(classes):
            for b, word in enumerate(self.background_words):
                applies[c, b] = word in words.get(name, []) if isinstance(words, dict) else True
        self.applies = applies
        self.class_weight = torch.tensor([settings.class_weights.get(name, 1.0) for name in classes])
        prompts = [fill(settings.object_prompt, display_name(c, settings.class_names)) for c in classes]
        prompts += [fill(settings.background_prompt, w) for w in self.background_words]
        self.prompts = prompts
        with torch.no_grad():
            self.text = clip.encode_text(prompts).float()
        self.logit_scale = float(clip.model.logit_scale.exp().clamp(max=100)) if hasattr(clip.model, "logit_scale") else 100.0

    def to_masking_space(self, images01: torch.Tensor) -> torch.Tensor:
        """The images the masks multiply: pixel space, or the normalised spaces of the public code (compatibility)."""
        if self.settings.masking == "imagenet_normalized":
            return imagenet_normalize(images01)
        if self.settings.masking == "clip_normalized":
            mean = images01.new_tensor(self.clip.mean).view(1, 3, 1, 1)
            std = images01.new_tensor(self.clip.std).view(1, 3, 1, 1)
            return (images01 - mean) / std
        return images01

    def encode_masked(self, images: torch.Tensor) -> torch.Tensor:
        if self.settings.masking == "pixel":
            return self.clip.encode_image(images)  # resize + CLIP's normalisation + encode
        return F.normalize(self.clip.model.encode_image(images), dim=-1)  # already normalised (or wrongly so)

    def __call__(self, images01: torch.Tensor, maps: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """``images01`` N x 3 x H x W, ``maps`` N x K x h x w in [0, 1] (foreground channels), ``labels`` N x K."""
        positives = labels.nonzero()  # P x 2: (image, class)
        n, c = positives[:, 0], positives[:, 1]
        size = self.clip.input_size
        masks = F.interpolate(maps[n, c][:, None], size=size, mode="bilinear", align_corners=True)
        source = self.to_masking_space(images01)
        pictures = F.interpolate(source, size=size, mode="bilinear", align_corners=True)[n]
        features = self.encode_masked(torch.cat([masks * pictures, (1 - masks) * pictures]))  # one CLIP forward
        similarity = features.float() @ self.text.to(features.device).t()  # 2P x (K + B)
        fg, bg = similarity[: len(n)], similarity[len(n):]
        k = len(self.classes)
        if self.settings.similarity == "softmax":
            fg, bg = prompt_probabilities(fg, self.logit_scale), prompt_probabilities(bg, self.logit_scale)
        rows = torch.arange(len(n), device=fg.device)
        weights = self.class_weight.to(fg.device)[c]
        otm = object_text_matching(fg[rows, c], weights)
        btm = background_text_matching(bg[rows, c], weights)
        if self.background_words:
            cbs = background_suppression(fg[:, k:], self.applies.to(fg.device)[c], self.settings.cbs_threshold,
                                         self.settings.cbs_reduction)
        else:
            cbs = fg.new_zeros(())
        reg = area_regularization(maps)
        w = self.settings.loss_weights
        loss = w[0] * otm + w[1] * btm + w[2] * cbs + w[3] * reg
        parts = {"otm": otm.item(), "btm": btm.item(), "cbs": cbs.item(), "reg": reg.item(),
                 "fg_score": fg[rows, c].mean().item(), "bg_score": bg[rows, c].mean().item()}
        return loss, parts


# The two presets of the config (``cam.clims.preset``); every knob can also be set alone. VOC words as published.
VOC_BACKGROUND_IMPROVED = ["tree", "river", "sea", "lake", "water", "railway", "railroad", "track", "stone", "rocks"]
VOC_BACKGROUND_CVPR = {"boat": ["river", "water", "lake", "sea", "building"],
                       "train": ["railroad", "railway", "branches", "tree"]}
PRESETS: dict[str, dict] = {
    "improved": {"epochs": 15, "batch_size": 16, "lr": 0.00025, "loss_weights": [10.0, 24.0, 1.0, 0.2],
                 "background_channel": False, "cbs_threshold": 0.26, "cbs_reduction": "sum", "class_weights": {},
                 "similarity": "cosine", "masking": "pixel"},
    "cvpr": {"epochs": 10, "batch_size": 16, "lr": 0.00025, "loss_weights": [10.0, 25.0, 29.5, 1.15],
             "background_channel": True, "cbs_threshold": None, "cbs_reduction": "sum_mean",
             "class_weights": {"sofa": 3.0, "diningtable": 3.0, "chair": 3.0}, "similarity": "cosine",
             "masking": "pixel"},
}


def resolve_clims_section(section: dict, stuff_classes: list[str], confounders: dict[str, str]) -> dict:
    """The config's ``cam.clims`` with every null knob filled from its preset.

    Background words when not given: the dataset's stuff words (a global list for ``improved``, each class's
    confounder stuff for ``cvpr``) where the dataset has stuff classes, else the published VOC words.
    """
    preset = section.get("preset", "improved")
    resolved = {key: (value if value is not None else PRESETS[preset].get(key)) for key, value in section.items()}
    for key, value in PRESETS[preset].items():
        resolved.setdefault(key, value)
    if resolved.get("background_words") is None:
        if stuff_classes:
            resolved["background_words"] = (list(stuff_classes) if preset == "improved"
                                            else {c: [s] for c, s in confounders.items()})
        else:
            resolved["background_words"] = VOC_BACKGROUND_IMPROVED if preset == "improved" else VOC_BACKGROUND_CVPR
    return resolved
