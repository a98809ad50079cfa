"""The contrastive loss on hand-made features with known values."""

from __future__ import annotations

import math

import torch

from clims_core.losses.contrastive import contrastive_loss


def test_perfect_alignment_has_low_loss_and_swap_high():
    eye = torch.eye(3)
    good = contrastive_loss(eye, eye, 10.0)
    bad = contrastive_loss(eye, eye[[1, 2, 0]], 10.0)
    expected_good = -math.log(math.exp(10) / (math.exp(10) + 2))
    assert torch.isclose(good, torch.tensor(expected_good), atol=1e-5)
    assert bad > good + 5


def test_identical_texts_are_not_negatives():
    # two images share the text "a"; their features are identical, so hard targets would charge log(2) each way
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    texts = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    hard = contrastive_loss(images, texts, 1.0)
    soft = contrastive_loss(images, texts, 1.0, text_ids=torch.tensor([0, 0]))
    assert torch.isclose(hard, torch.tensor(math.log(2)), atol=1e-6)
    assert torch.isclose(soft, torch.tensor(math.log(2)), atol=1e-6)  # cross-entropy of uniform target = entropy
    distinct = contrastive_loss(images, texts, 1.0, text_ids=torch.tensor([0, 1]))
    assert torch.isclose(distinct, hard)
