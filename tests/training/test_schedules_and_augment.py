"""Schedules at their landmarks; soft masks hide about the asked share and stay in [0, 1]."""

from __future__ import annotations

import pytest
import torch

from clims_core.training.augment import mask_some, random_soft_masks
from clims_core.training.contrastive import ContrastiveSettings, make_optimizer
from clims_core.training.schedules import poly, warmup_cosine


def test_warmup_cosine_landmarks():
    assert warmup_cosine(0, 100, warmup=10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, warmup=10) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, warmup=10) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, warmup=10) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, warmup=10) == pytest.approx(0.0, abs=1e-12)
    assert poly(0, 10) == 1 and poly(10, 10) == 0 and poly(5, 10, power=1) == pytest.approx(0.5)


def test_soft_masks_hide_about_the_asked_area():
    masks = random_soft_masks(64, 32, torch.Generator().manual_seed(0), masked_area=0.25)
    assert masks.shape == (64, 1, 32, 32) and masks.min() >= 0 and masks.max() <= 1
    assert (masks < 0.5).float().mean().item() == pytest.approx(0.25, abs=0.05)


def test_mask_some_touches_only_chosen_images():
    images = torch.ones(100, 3, 16, 16)
    out = mask_some(images, 0.3, torch.Generator().manual_seed(1))
    changed = (out != 1).flatten(1).any(dim=1)
    assert 15 <= changed.sum() <= 45 and torch.equal(images, torch.ones(100, 3, 16, 16))


def test_sgd_gets_momentum_and_weight_decay_in_their_own_places():
    model = torch.nn.Linear(4, 2)
    settings = ContrastiveSettings(epochs=1, batch_size=2, lr=5e-5, weight_decay=1e-3, optimizer="sgd", momentum=0.9)
    optimizer = make_optimizer(list(model.parameters()), settings)
    assert isinstance(optimizer, torch.optim.SGD)
    assert all(group["momentum"] == 0.9 for group in optimizer.param_groups)
    assert [group["weight_decay"] for group in optimizer.param_groups] == [1e-3, 0.0]  # no decay on the bias
