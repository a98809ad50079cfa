"""denseCRF with IRNet's settings on hand-made images: labels snap to colour edges, IR labels, the CRF refiner."""

from __future__ import annotations

import numpy as np
import pydensecrf.densecrf as dcrf
import pytest
from pydensecrf.utils import unary_from_labels

from clims_core.refine.crf import CrfSettings, ImageCrf, crf_mask, ir_label
from clims_core.refine.labels import threshold_labels

SETTINGS = CrfSettings()


def two_colour_image(height: int = 48, width: int = 64, split: int = 32) -> np.ndarray:
    """Left of column ``split`` dark red, right of it light blue, a little noise (like a JPEG)."""
    rng = np.random.default_rng(0)
    image = np.zeros((height, width, 3), dtype=np.int16)
    image[:, :split] = (150, 30, 30)
    image[:, split:] = (60, 120, 220)
    return np.clip(image + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)


def irnet_crf_inference_label(image, labels, n_labels, t=10, gt_prob=0.7):
    """IRNet's misc/imutils.py crf_inference_label, as published."""
    h, w = image.shape[:2]
    d = dcrf.DenseCRF2D(w, h, n_labels)
    d.setUnaryEnergy(unary_from_labels(labels, n_labels, gt_prob=gt_prob, zero_unsure=False))
    d.addPairwiseGaussian(sxy=3, compat=3)
    d.addPairwiseBilateral(sxy=50, srgb=5, rgbim=np.ascontiguousarray(np.copy(image)), compat=10)
    q = d.inference(t)
    return np.argmax(np.array(q).reshape((n_labels, h, w)), axis=0)


def test_labels_snap_to_the_colour_edge():
    image = two_colour_image()
    labels = np.zeros((48, 64), dtype=np.int64)
    labels[:, :38] = 1  # the red region's label spills 6 px into the blue one
    refined = ImageCrf(image, 2, SETTINGS).labels(labels)
    truth = np.zeros_like(labels)
    truth[:, :32] = 1
    assert (labels != truth).mean() > 0.09
    assert (refined != truth).mean() < 0.01


def test_reused_pairwise_terms_give_irnets_result():
    """One ImageCrf serves several unaries (IR labels' two maps) with the result of a fresh CRF for each."""
    image = two_colour_image()
    rng = np.random.default_rng(1)
    crf = ImageCrf(image, 3, SETTINGS)
    for _ in range(3):
        labels = np.zeros((48, 64), dtype=np.int64)
        labels[rng.integers(0, 20):40, rng.integers(0, 30):rng.integers(34, 64)] = 1
        labels[40:, :20] = 2
        assert np.array_equal(crf.labels(labels), irnet_crf_inference_label(image, labels, 3))


def test_a_single_label_map_is_returned_without_running_the_crf():
    image = two_colour_image()
    labels = np.ones((48, 64), dtype=np.int64)
    crf = ImageCrf(image, 3, SETTINGS)
    assert np.array_equal(crf.labels(labels), labels) and crf._crf is None
    assert np.array_equal(irnet_crf_inference_label(image, labels, 3), labels)  # what the CRF would give


def test_threshold_labels_ties_go_to_the_background():
    cams = np.array([[[0.2, 0.3, 0.5]], [[0.1, 0.4, 0.3]]], dtype=np.float32)
    assert threshold_labels(cams, 0.3).tolist() == [[0, 2, 1]]


def test_ir_label_marks_confident_foreground_background_and_ignores_the_rest():
    """A square object (strong CAM) in a ring of its own colour (weak CAM): class inside, 255 on the ring, 0 far away.

    (A weak halo of the background's colour would be snapped to background by the CRF of the low-threshold map.)"""
    image = np.full((48, 48, 3), 200, dtype=np.uint8)
    image[10:38, 10:38] = (120, 90, 200)
    image[16:32, 16:32] = (30, 160, 40)
    cams = np.zeros((1, 48, 48), dtype=np.float32)
    cams[0, 10:38, 10:38] = 0.15  # above bg_thres, below fg_thres: unsure
    cams[0, 16:32, 16:32] = 0.9
    keys = np.array([4])  # class index 4 -> mask value 5
    label = ir_label(image, cams, keys, fg_thres=0.3, bg_thres=0.05, settings=SETTINGS)
    assert label.dtype == np.uint8
    assert (label[16:32, 16:32] == 5).all()
    assert (label[12:14, 12:36] == 255).all() and (label[34:36, 12:36] == 255).all()
    assert (label[:6] == 0).all() and (label[:, 42:] == 0).all()
    assert set(np.unique(label).tolist()) == {0, 5, 255}


def test_ir_label_checks_thresholds():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="bg_thres"):
        ir_label(image, np.zeros((1, 8, 8), np.float32), np.array([0]), fg_thres=0.1, bg_thres=0.3, settings=SETTINGS)


@pytest.mark.parametrize("unary", ["labels", "scores"])
def test_crf_mask_follows_the_object_not_the_blurred_cam(unary):
    image = two_colour_image()
    cams = np.zeros((2, 48, 64), dtype=np.float32)
    cams[0, :, :40] = np.linspace(1.0, 0.3, 40)[None]  # a blurred map of the red half, spilling 8 px over the edge
    mask = crf_mask(image, cams, np.array([2, 5]), bg_thres=0.25, settings=SETTINGS, unary=unary)
    truth = np.zeros((48, 64), dtype=np.uint8)
    truth[:, :32] = 3
    assert (threshold_labels(cams, 0.25) > 0)[:, 32:40].all()  # the CAM alone takes the spill
    assert (mask != truth).mean() < 0.02
    with pytest.raises(ValueError, match="unary"):
        crf_mask(image, cams, np.array([2, 5]), 0.25, SETTINGS, unary="softmax")
