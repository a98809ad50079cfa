"""CCT's losses on hand-made values: ramp-up, ignore handling, consistency, bootstrapped CE."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from clims_core.losses.cct import (abce_threshold, bootstrapped_ce, log_rampup, rampup_weight, sigmoid_rampup,
                                   softmax_mse, supervised_ce, weak_ce)


def test_sigmoid_rampup_values():
    assert sigmoid_rampup(0, 100) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(50, 100) == pytest.approx(math.exp(-5 * 0.25))
    assert sigmoid_rampup(100, 100) == 1.0 and sigmoid_rampup(250, 100) == 1.0
    assert sigmoid_rampup(-3, 100) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(3, 0) == 1.0


def test_rampup_weight_reaches_its_final_value_after_the_first_tenth():
    total = 1000
    weights = [rampup_weight(step, total, 30.0, 0.1) for step in range(total)]
    assert weights[0] == pytest.approx(30 * math.exp(-5))
    assert weights[50] == pytest.approx(30 * math.exp(-5 * 0.25))
    assert all(a <= b for a, b in zip(weights, weights[1:]))
    assert weights[100] == 30.0 and weights[-1] == 30.0
    assert rampup_weight(0, total, 30.0, 0.0) == 30.0  # no ramp


def test_log_rampup_and_abce_threshold():
    assert log_rampup(0, 10) == 0.0 and log_rampup(10, 10) == pytest.approx(1 - math.exp(-5))
    assert abce_threshold(0, 100, 21) == pytest.approx(1 / 21)
    assert abce_threshold(40, 100, 21) == pytest.approx(1 / 21 + (0.9 - 1 / 21) * (1 - math.exp(-5)))
    assert abce_threshold(100, 100, 21) == abce_threshold(40, 100, 21)


def test_cross_entropy_ignores_255():
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, :2] = 255
    changed = logits.clone()
    changed[0, :, :2] = torch.randn(3, 2, 4) * 10  # only ignored pixels change
    assert torch.allclose(supervised_ce(logits, target), supervised_ce(changed, target))
    assert torch.allclose(weak_ce(logits, target), supervised_ce(logits, target))
    valid = target != 255
    by_hand = -F.log_softmax(logits, 1).gather(1, target.clamp_max(2)[:, None])[:, 0][valid].mean()
    assert torch.allclose(supervised_ce(logits, target), by_hand)


def test_all_ignored_gives_zero_not_nan_and_keeps_the_graph():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    target = torch.full((1, 2, 2), 255)
    for loss in (supervised_ce(logits, target), weak_ce(logits, target), bootstrapped_ce(logits, target, 0.5)):
        assert loss.item() == 0.0
        loss.backward()


def test_temperature_scales_the_logits():
    logits, target = torch.randn(1, 3, 2, 2), torch.randint(0, 3, (1, 2, 2))
    assert torch.allclose(supervised_ce(logits, target, temperature=2.0), supervised_ce(logits / 2, target))


def test_softmax_mse_matches_by_hand_and_refuses_a_target_with_gradient():
    logits = torch.randn(2, 4, 3, 3, requires_grad=True)
    target = F.softmax(torch.randn(2, 4, 3, 3), 1)
    assert torch.allclose(softmax_mse(logits, target), ((F.softmax(logits, 1) - target) ** 2).mean())
    assert softmax_mse(logits.detach() * 1, F.softmax(logits.detach(), 1)).item() == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="detached"):
        softmax_mse(logits, F.softmax(logits, 1))


def test_bootstrapped_ce_keeps_only_hard_pixels():
    # pixel 0: confident and right (p ~ 1); pixel 1: wrong; pixel 2: ignored
    logits = torch.tensor([[[[10.0, -10.0, 0.0]], [[-10.0, 10.0, 5.0]]]])  # 1 x 2 x 1 x 3
    target = torch.tensor([[[0, 0, 255]]])
    loss = bootstrapped_ce(logits, target, threshold=0.7, min_kept=0)
    only_hard = F.cross_entropy(logits[..., 1:2], target[..., 1:2])
    assert torch.allclose(loss, only_hard)
    # a threshold above every probability keeps both labelled pixels
    assert torch.allclose(bootstrapped_ce(logits, target, threshold=1.01, min_kept=0),
                          F.cross_entropy(logits, target, ignore_index=255))
