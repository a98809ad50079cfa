"""CLIP's symmetric contrastive (InfoNCE) loss, with soft targets where several pairs share a caption.

In label-text fine-tuning many images of a batch carry the same text ("a photo of train."); plain CLIP loss would push
those identical captions apart as negatives. ``same_text`` groups them so each image's target mass is spread evenly
over every pair with an identical text, and vice versa.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
    text_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of image->text and text->image cross-entropy over a batch of L2-normalised features.

    ``text_ids`` (N,) marks identical texts with the same integer; without it pair i matches only pair i.
    """
    logits = logit_scale * image_features @ text_features.t()
    if text_ids is None:
        target = torch.arange(logits.shape[0], device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    same = (text_ids[:, None] == text_ids[None, :]).to(logits.dtype)
    target = same / same.sum(dim=1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
