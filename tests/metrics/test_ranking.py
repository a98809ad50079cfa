"""AP against hand-computed cases and a brute-force definition."""

from __future__ import annotations

import numpy as np
import pytest

from clims_core.metrics.ranking import average_precision, mean_average_precision


def test_hand_computed():
    # ranking: + - + -  -> precisions at positives 1/1 and 2/3
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([0.1, 0.2]), np.array([1, 0])) == pytest.approx(0.5)
    assert np.isnan(average_precision(np.array([0.1]), np.array([0])))


def test_ties_are_pessimistic():
    assert average_precision(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.5)


def test_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores, labels = rng.random(30), rng.random(30) < 0.3
        if not labels.any():
            continue
        ranks = np.argsort(-scores)
        precisions = [labels[ranks[: k + 1]].mean() for k in range(30) if labels[ranks[k]]]
        assert average_precision(scores, labels) == pytest.approx(np.mean(precisions))


def test_map_skips_classes_without_positives():
    scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5]])
    labels = np.array([[1, 0, 0], [0, 1, 0]])
    value, per_class = mean_average_precision(scores, labels)
    assert value == pytest.approx(1.0) and np.isnan(per_class[2])
