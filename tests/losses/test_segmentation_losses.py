"""The pseudo-mask losses: DeepLab's CE over labelled pixels and its class-balanced form."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from clims_core.io.masks import IGNORE_INDEX
from clims_core.losses.segmentation import pseudo_mask_loss


def _case() -> tuple[torch.Tensor, torch.Tensor]:
    """Three background pixels scored right (loss ~0) and one object pixel scored as background (loss ~ln 2 + ...),
    plus one ignored pixel scored wrong."""
    logits = torch.zeros(1, 2, 1, 5)
    logits[0, 0, 0, :3] = 10.0  # background, confidently right
    target = torch.tensor([[[0, 0, 0, 1, 1]]])
    target[0, 0, 4] = IGNORE_INDEX
    return logits, target


def test_ce_averages_the_labelled_pixels_and_skips_ignore():
    logits, target = _case()
    expected = F.cross_entropy(logits[..., :4], target[..., :4])
    assert torch.isclose(pseudo_mask_loss(logits, target, "ce"), expected)


def test_balanced_averages_each_present_class_first():
    logits, target = _case()
    background = F.cross_entropy(logits[..., :3], target[..., :3])
    obj = math.log(2.0)  # equal logits for the object pixel
    assert torch.isclose(pseudo_mask_loss(logits, target, "balanced"), (background + obj) / 2)
    # the one object pixel weighs as much as the three background pixels together: more than under plain CE
    assert pseudo_mask_loss(logits, target, "balanced") > pseudo_mask_loss(logits, target, "ce")


def test_all_ignored_gives_zero_with_a_gradient_and_unknown_kind_is_refused():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = pseudo_mask_loss(logits, torch.full((1, 2, 2), IGNORE_INDEX), "balanced")
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None
    with pytest.raises(ValueError, match="expected one of"):
        pseudo_mask_loss(logits, torch.zeros(1, 2, 2, dtype=torch.long), "focal")
