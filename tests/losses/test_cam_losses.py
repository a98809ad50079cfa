"""CAM-baseline and CLIMS losses on hand-made tensors with known values."""

from __future__ import annotations

import math

import pytest
import torch

from clims_core.losses.cam import merge, multilabel_loss, puzzle_alpha, puzzle_reconstruction_loss, tile
from clims_core.losses.clims import (area_regularization, background_suppression, background_text_matching,
                                     object_text_matching, prompt_probabilities)


def test_multilabel_loss_matches_definition():
    logits, labels = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]])
    expected = -(math.log(1 / (1 + math.exp(-2))) + math.log(1 - 1 / (1 + math.exp(1)))) / 2
    assert multilabel_loss(logits, labels).item() == pytest.approx(expected)


def test_tile_and_merge_are_inverse():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float).view(2, 3, 4, 6)
    tiles = tile(images)
    assert tiles.shape == (8, 3, 2, 3)
    assert torch.equal(tiles[0], images[0, :, :2, :3]) and torch.equal(tiles[2 + 1], images[1, :, :2, 3:])
    assert torch.equal(merge(tiles, 2), images)


def test_puzzle_reconstruction_counts_labelled_classes_only():
    full = torch.zeros(1, 2, 2, 2)
    merged = torch.ones(1, 2, 2, 2)
    assert puzzle_reconstruction_loss(full, merged, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.5)
    assert puzzle_reconstruction_loss(full, merged, torch.tensor([[1.0, 1.0]])).item() == pytest.approx(1.0)
    assert puzzle_alpha(0, 100) == 0 and puzzle_alpha(25, 100) == pytest.approx(2.0) and puzzle_alpha(80, 100) == 4.0


def test_text_matching_losses():
    score = torch.tensor([0.5, 0.25])
    assert object_text_matching(score).item() == pytest.approx(-(math.log(0.5) + math.log(0.25)) / 2)
    assert background_text_matching(score).item() == pytest.approx(-(math.log(0.5) + math.log(0.75)) / 2)
    weighted = object_text_matching(score, torch.tensor([3.0, 1.0]))
    assert weighted.item() == pytest.approx(-(3 * math.log(0.5) + math.log(0.25)) / 2)
    assert object_text_matching(torch.tensor([0.0])).isfinite()  # clamped, never -log(0)


def test_background_suppression_reductions_and_threshold():
    score = torch.tensor([[0.5, 0.1], [0.3, 0.2]])
    applies = torch.tensor([[True, True], [True, False]])
    terms = {(0, 0): -math.log(0.5), (0, 1): -math.log(0.9), (1, 0): -math.log(0.7)}
    assert background_suppression(score, applies, reduction="sum").item() == pytest.approx(sum(terms.values()))
    assert background_suppression(score, applies, reduction="mean").item() == pytest.approx(sum(terms.values()) / 3)
    sum_mean = (terms[0, 0] + terms[0, 1]) / 2 + terms[1, 0]
    assert background_suppression(score, applies, reduction="sum_mean").item() == pytest.approx(sum_mean)
    above = background_suppression(score, applies, threshold=0.26, reduction="sum").item()
    assert above == pytest.approx(terms[0, 0] + terms[1, 0])
    any_word = (-math.log(1 - 0.6) - math.log(1 - 0.3)) / 2  # per positive its words' summed probability
    assert background_suppression(score, applies, reduction="any_word").item() == pytest.approx(any_word)


def test_any_word_suppression_is_not_diluted_by_more_words():
    flood = torch.tensor([[0.8, 0.0]])  # the object's image reads as its first stuff word
    one, many = torch.ones(1, 2, dtype=torch.bool), torch.ones(1, 8, dtype=torch.bool)
    flood_many = torch.nn.functional.pad(flood, (0, 6))
    assert background_suppression(flood_many, many, reduction="any_word").item() == pytest.approx(
        background_suppression(flood, one, reduction="any_word").item())
    assert background_suppression(flood_many, many, reduction="mean").item() < background_suppression(
        flood, one, reduction="mean").item()
    assert background_suppression(flood[:0], one[:0], reduction="any_word").item() == 0.0  # no positives


def test_log_domain_clamp_takes_non_positive_scores_as_the_cvpr_code():
    # The CVPR code clamps nothing: -log(1 - s) is finite (negative) for a cosine s < 0, -log(s) is NaN there.
    otm = object_text_matching(torch.tensor([0.5, -0.1]), clamp="log_domain").item()
    assert otm == pytest.approx((-math.log(0.5) - math.log(1e-4)) / 2)  # the NaN is clamped to 1e-4, as with "both"
    btm = background_text_matching(torch.tensor([-0.2, 0.5]), clamp="log_domain").item()
    assert btm == pytest.approx((-math.log(1.2) - math.log(0.5)) / 2)
    both = background_text_matching(torch.tensor([-0.2, 0.5])).item()  # the later code's clamp into [1e-4, 1 - 1e-4]
    assert both == pytest.approx((-math.log(1 - 1e-4) - math.log(0.5)) / 2)
    near_one = torch.tensor([0.99999])  # the upper clamp is the later code's only: -log(0.9999) with "both"
    assert object_text_matching(near_one, clamp="log_domain").item() == pytest.approx(1e-5, rel=1e-2)
    assert object_text_matching(near_one).item() == pytest.approx(-math.log(1 - 1e-4), rel=1e-2)
    assert background_text_matching(torch.tensor([1.0]), clamp="log_domain").isfinite()  # clamped at 1 - 1e-4
    score = torch.tensor([[0.3, -0.1, 0.0], [0.2, 0.4, -0.5]])
    applies = torch.tensor([[True, True, True], [True, False, False]])
    cvpr = background_suppression(score, applies, None, "sum_mean", clamp="log_domain").item()
    assert cvpr == pytest.approx(-(math.log(0.7) + math.log(1.1) + math.log(1.0)) / 3 - math.log(0.8))
    thresholded = background_suppression(score, applies, 0.0, "sum_mean", clamp="log_domain").item()
    assert thresholded == pytest.approx(-math.log(0.7) / 3 - math.log(0.8))  # threshold 0 drops -0.1 (and 0.0)
    with pytest.raises(ValueError, match="clamp"):
        object_text_matching(torch.tensor([0.5]), clamp="none")


def test_area_and_probabilities():
    assert area_regularization(torch.tensor([[0.0, 1.0], [1.0, 1.0]])).item() == pytest.approx(0.75)
    p = prompt_probabilities(torch.tensor([[0.3, 0.2]]), 100.0)
    assert p.sum().item() == pytest.approx(1.0) and p[0, 0].item() == pytest.approx(1 / (1 + math.exp(-10)))
