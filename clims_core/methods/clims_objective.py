"""The CLIMS objective for one batch: masked images -> one batched CLIP forward -> OTM, BTM, CBS and REG.

Kept apart from the training loop so it can be tested on hand-made maps and a tiny CLIP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clims_core.losses.clims import (area_regularization, background_suppression, background_text_matching,
                                     object_text_matching, prompt_probabilities)
from clims_core.models.backbone import imagenet_normalize
from clims_core.models.clip import LoadedClip
from clims_core.models.prompts import display_name, fill
from clims_core.methods.clims_settings import ClimsSettings


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
        self.applies = applies.to(clip.device)
        self.class_weight = torch.tensor([settings.class_weights.get(name, 1.0) for name in classes], device=clip.device)
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

    def background_hole(self, masks: torch.Tensor) -> torch.Tensor:
        """What BTM's background image blacks out: the masks (P x 1 x S x S), dilated by ``btm_hole_dilation`` of
        the side (a max over the neighbourhood, so the gradient still reaches the map)."""
        radius = round(self.settings.btm_hole_dilation * masks.shape[-1])
        if radius == 0:
            return masks
        return F.max_pool2d(masks, kernel_size=2 * radius + 1, stride=1, padding=radius)

    def encode_masked(self, images: torch.Tensor) -> torch.Tensor:
        if self.settings.masking == "pixel":
            return self.clip.encode_image(images)  # resize + CLIP's normalisation + encode
        return F.normalize(self.clip.model.encode_image(images), dim=-1)  # already normalised (or wrongly so)

    def _probabilities_without(self, similarity: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Softmax over each row's prompts except the ``hidden`` ones (they get probability 0)."""
        return prompt_probabilities(similarity.masked_fill(hidden, float("-inf")), self.logit_scale)

    def __call__(self, images01: torch.Tensor, maps: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """``images01`` N x 3 x H x W, ``maps`` N x K x h x w in [0, 1] (foreground channels), ``labels`` N x K."""
        positives = labels.nonzero()  # P x 2: (image, class)
        n, c = positives[:, 0], positives[:, 1]
        size = self.clip.input_size
        masks = F.interpolate(maps[n, c][:, None], size=size, mode="bilinear", align_corners=True)
        source = self.to_masking_space(images01)
        pictures = F.interpolate(source, size=size, mode="bilinear", align_corners=True)[n]
        # CLIP in float32 even under CUDA autocast: bf16 features times a logit scale of 100 put noise of several
        # tenths into the softmax's logits (measured on the demo: mIoU 37.7 with bf16 CLIP vs 45.3 without, 4 seeds).
        with torch.autocast(images01.device.type, enabled=False):
            masked = torch.cat([masks * pictures, (1 - self.background_hole(masks)) * pictures]).float()
            features = self.encode_masked(masked)  # one CLIP forward for all foreground and background images
            similarity = features.float() @ self.text.t()  # 2P x (K + B)
        fg_raw, bg_raw = similarity[: len(n)], similarity[len(n):]
        k = len(self.classes)
        rows = torch.arange(len(n), device=fg_raw.device)
        fg, bg, otm_scores, cbs_scores = fg_raw, bg_raw, fg_raw, fg_raw
        if self.settings.similarity == "softmax":
            others = torch.zeros_like(fg_raw, dtype=torch.bool)  # each row's other class prompts
            others[:, :k] = True
            others[rows, c] = False
            fg, bg = prompt_probabilities(fg_raw, self.logit_scale), prompt_probabilities(bg_raw, self.logit_scale)
            otm_scores, cbs_scores = fg, fg
            if self.settings.otm_softmax == "without_other_classes":
                otm_scores = self._probabilities_without(fg_raw, others)
            if self.settings.btm_softmax == "without_other_classes":
                bg = self._probabilities_without(bg_raw, others)
            if self.settings.cbs_softmax == "without_labels":
                labelled = torch.zeros_like(fg_raw, dtype=torch.bool)
                labelled[:, :k] = labels[n].bool()
                cbs_scores = self._probabilities_without(fg_raw, labelled)
        weights = self.class_weight[c]
        clamp = self.settings.score_clamp
        otm = object_text_matching(otm_scores[rows, c], weights, clamp)
        btm = background_text_matching(bg[rows, c], weights, clamp)
        if self.background_words:
            cbs = background_suppression(cbs_scores[:, k:], self.applies[c], self.settings.cbs_threshold,
                                         self.settings.cbs_reduction, clamp)
        else:
            cbs = fg.new_zeros(())
        reg = area_regularization(maps if self.settings.area == "all" else maps[n, c])
        w = self.settings.loss_weights
        loss = w[0] * otm + w[1] * btm + w[2] * cbs + w[3] * reg
        parts = {"otm": otm.item(), "btm": btm.item(), "cbs": cbs.item(), "reg": reg.item(),
                 "fg_score": otm_scores[rows, c].mean().item(), "bg_score": bg[rows, c].mean().item()}
        return loss, parts
