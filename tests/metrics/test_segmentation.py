"""Segmentation metrics, each checked against an independent, plain implementation or a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest

from clims_core.metrics.segmentation import (DEFAULT_THRESHOLDS, cams_to_label, confounder_false_positive_rate,
                                             confusion, scores_from_confusion, sweep_image, threshold_sweep)


def loop_iou(preds: list[np.ndarray], gts: list[np.ndarray], n: int, ignore: int = 255) -> tuple[list[float], float]:
    """Per-class IoU with boolean masks, summed over images; mIoU over classes with any gt or prediction."""
    ious = []
    for c in range(n):
        inter = union = 0
        for pred, gt in zip(preds, gts):
            valid = gt != ignore
            inter += int(np.logical_and.reduce([pred == c, gt == c, valid]).sum())
            union += int(np.logical_and(np.logical_or(pred == c, gt == c), valid).sum())
        ious.append(inter / union if union else float("nan"))
    present = [i for i in ious if i == i]
    return ious, sum(present) / len(present)


def loop_confusion(pred: np.ndarray, gt: np.ndarray, n: int, ignore: int = 255) -> np.ndarray:
    conf = np.zeros((n, n), dtype=np.int64)
    for p, g in zip(pred.ravel().tolist(), gt.ravel().tolist()):
        if g != ignore:
            conf[g, p] += 1
    return conf


def test_confusion_and_miou_match_independent_implementation() -> None:
    rng = np.random.default_rng(1)
    n = 7
    preds, gts = [], []
    total = np.zeros((n, n), dtype=np.int64)
    for _ in range(6):
        shape = tuple(rng.integers(5, 40, 2))
        gt = rng.integers(0, n - 1, shape).astype(np.uint8)  # class 6 never in gt ...
        gt[rng.random(shape) < 0.1] = 255
        pred = rng.integers(0, n - 1, shape).astype(np.uint8)  # ... nor in the prediction: its IoU is NaN, skipped
        copy = (rng.random(shape) < 0.5) & (gt != 255)
        pred[copy] = gt[copy]  # correlate with the ground truth, so IoUs are not all alike
        conf = confusion(pred, gt, n)
        np.testing.assert_array_equal(conf, loop_confusion(pred, gt, n))
        total += conf
        preds.append(pred)
        gts.append(gt)
    scores = scores_from_confusion(total)
    ious, miou = loop_iou(preds, gts, n)
    np.testing.assert_allclose(scores["iou"], ious, equal_nan=True)
    assert np.isnan(scores["iou"][6]) and scores["miou"] == pytest.approx(miou)
    for c in range(n - 1):
        tp = sum(int(((p == c) & (g == c)).sum()) for p, g in zip(preds, gts))
        assert scores["recall"][c] == pytest.approx(tp / sum(int((g == c).sum()) for g in gts))
        predicted = sum(int(((p == c) & (g != 255)).sum()) for p, g in zip(preds, gts))
        assert scores["precision"][c] == pytest.approx(tp / predicted if predicted else np.nan, nan_ok=True)


def test_confusion_rejects_out_of_range_labels() -> None:
    with pytest.raises(ValueError, match="ground truth has label 5"):
        confusion(np.zeros((2, 2), np.uint8), np.full((2, 2), 5, np.uint8), 3)
    with pytest.raises(ValueError, match="prediction has labels outside"):
        confusion(np.full((2, 2), 3, np.uint8), np.zeros((2, 2), np.uint8), 3)


def test_scores_hand_case() -> None:
    conf = np.array([[3, 1], [0, 2]])  # background: tp 3, union 4; class 1: tp 2, union 3
    scores = scores_from_confusion(conf)
    np.testing.assert_allclose(scores["iou"], [0.75, 2 / 3])
    np.testing.assert_allclose(scores["precision"], [1.0, 2 / 3])
    np.testing.assert_allclose(scores["recall"], [0.75, 1.0])
    assert scores["miou"] == pytest.approx((0.75 + 2 / 3) / 2)


def test_cams_to_label_irnet_rule() -> None:
    cams = np.array([[[0.9, 0.2, 0.5]], [[0.1, 0.6, 0.5]]], dtype=np.float32)  # 2 classes, 1 x 3 image
    keys = np.array([4, 1])
    assert cams_to_label(cams, keys, 0.3).tolist() == [[5, 2, 5]]  # tie between classes: the first plane
    assert cams_to_label(cams, keys, 0.5).tolist() == [[5, 2, 0]]  # tie with the threshold: background
    assert cams_to_label(cams, keys, 0.95).tolist() == [[0, 0, 0]]
    assert cams_to_label(np.zeros((0, 2, 2), np.float32), np.zeros(0, np.int64), 0.1).tolist() == [[0, 0], [0, 0]]


def test_confounder_rate_hand_case() -> None:
    # 4x4: a train (class 6) on the left column, railroad (stuff 3) on the bottom two rows, sky (stuff 1) elsewhere
    gt = np.zeros((4, 4), np.uint8)
    gt[:, 0] = 6
    gt[3, 3] = 255
    stuff = np.ones((4, 4), np.uint8)
    stuff[2:] = 3
    pred = np.zeros((4, 4), np.uint8)
    pred[:, :2] = 6  # the CAM spills one column to the right: onto 2 railroad pixels and 2 sky pixels
    # railroad visible as background: (2,1) (2,2) (2,3) (3,1) (3,2); (3,3) is ignore -> 5 pixels, 2 labelled train
    result = confounder_false_positive_rate([(pred, gt, stuff, [6])], {6: 3})
    assert result[(6, 3)] == {"rate": pytest.approx(2 / 5), "pixels": 5}
    # an image not labelled train does not count, even if the prediction says train there
    result = confounder_false_positive_rate([(pred, gt, stuff, [6]), (pred, np.zeros_like(gt), stuff, [2])], {6: 3})
    assert result[(6, 3)]["pixels"] == 5
    empty = confounder_false_positive_rate([(pred, gt, stuff, [2])], {6: 3})
    assert empty[(6, 3)]["pixels"] == 0 and np.isnan(empty[(6, 3)]["rate"])


def test_sweep_matches_per_threshold_labels() -> None:
    """The one-pass sweep equals cams_to_label + confusion (+ the plain confounder rate) at every threshold."""
    rng = np.random.default_rng(2)
    n, pairs = 7, [(1, 1), (2, 3), (6, 2)]
    samples = []
    for trial in range(12):
        k = int(rng.integers(0, 4))
        shape = tuple(rng.integers(3, 25, 2))
        keys = np.sort(rng.choice(6, k, replace=False))
        cams = rng.random((k, *shape)).astype(np.float32)
        cams[cams < 0.3] = 0.3  # exact ties with the 0.3 threshold go to the background
        gt = rng.integers(0, n, shape).astype(np.uint8)
        gt[rng.random(shape) < 0.1] = 255
        stuff = rng.integers(0, 4, shape).astype(np.uint8)
        samples.append((cams, keys, gt, stuff))
    sweep = threshold_sweep(samples, n, DEFAULT_THRESHOLDS, pairs)
    for t, threshold in enumerate(DEFAULT_THRESHOLDS):
        preds = [cams_to_label(cams, keys, threshold) for cams, keys, _, _ in samples]
        expected = sum(confusion(p, gt, n) for p, (_, _, gt, _) in zip(preds, samples))
        np.testing.assert_array_equal(sweep.confusion[t], expected)
        plain = confounder_false_positive_rate(
            [(p, gt, stuff, keys + 1) for p, (_, keys, gt, stuff) in zip(preds, samples)], dict(pairs))
        for i, pair in enumerate(pairs):
            assert sweep.confounder_pixels[i] == plain[pair]["pixels"]
            np.testing.assert_allclose(sweep.confounder_rates(t)[i], plain[pair]["rate"], equal_nan=True)


def test_sweep_rejects_bad_input() -> None:
    cams, keys, gt = np.zeros((1, 2, 2), np.float32), np.array([0]), np.zeros((2, 2), np.uint8)
    with pytest.raises(ValueError, match="strictly increasing"):
        sweep_image(cams, keys, gt, [0.3, 0.2], 3)
    with pytest.raises(ValueError, match="do not fit"):
        sweep_image(cams, keys, np.zeros((3, 2), np.uint8), [0.3], 3)
    with pytest.raises(ValueError, match="beyond the 2 foreground"):
        sweep_image(cams, np.array([2]), gt, [0.3], 3)
