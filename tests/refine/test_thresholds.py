"""``auto`` refinement thresholds read from the CAMs' evaluation (clims_core/refine/thresholds.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clims_core.metrics.segmentation import background_precision, foreground_precision
from clims_core.refine.random_walk import background_plane
from clims_core.refine.thresholds import (confident_background_threshold, read_stage_json, resolve_crf,
                                          resolve_ir_label, resolve_random_walk, walk_alpha)

# The demo's plain CAM at e1c323b (eval_cams on the train split), rounded: best 0.5.
CAM_EVAL = {"thresholds": [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55],
            "best_threshold": 0.5,
            "background_precision_per_threshold": [0.996, 0.993, 0.990, 0.985, 0.980, 0.974, 0.968, 0.961, 0.954,
                                                   0.947, 0.939]}


def test_confident_background_is_the_largest_pure_enough_threshold_up_to_the_best():
    assert confident_background_threshold(CAM_EVAL, 0.98) == 0.25
    assert confident_background_threshold(CAM_EVAL, 0.99) == 0.15
    assert confident_background_threshold(CAM_EVAL, 0.9) == 0.5      # capped at the best threshold, not 0.55
    assert confident_background_threshold(CAM_EVAL, 0.999) == 0.05   # none pure enough: the lowest
    holes = {**CAM_EVAL, "background_precision_per_threshold": [None] * 11}
    assert confident_background_threshold(holes, 0.5) == 0.05


def test_ir_label_auto_and_hand_values():
    assert resolve_ir_label({"fg_thres": "auto", "bg_thres": "auto", "bg_precision": 0.98}, CAM_EVAL) == {
        "fg_thres": 0.5, "bg_thres": 0.25}
    assert resolve_ir_label({"fg_thres": 0.3, "bg_thres": "auto", "bg_precision": 0.9}, CAM_EVAL) == {
        "fg_thres": 0.3, "bg_thres": 0.3}                             # never above the foreground plane
    assert resolve_ir_label({"fg_thres": 0.3, "bg_thres": 0.05, "bg_precision": 0.98}, None) == {
        "fg_thres": 0.3, "bg_thres": 0.05}
    with pytest.raises(ValueError, match="refine.ir_label: 'auto' needs the CAMs' evaluation"):
        resolve_ir_label({"fg_thres": "auto", "bg_thres": 0.05, "bg_precision": 0.98}, None)


def test_crf_auto_is_the_best_threshold(tmp_path):
    section = {"bg_thres": "auto", "unary": "labels", "split": "train_aug"}
    path = tmp_path / "eval_train.json"
    path.write_text(json.dumps(CAM_EVAL))
    assert resolve_crf(section, read_stage_json(path)) == {**section, "bg_thres": 0.5}
    assert resolve_crf({**section, "bg_thres": 0.3}, None)["bg_thres"] == 0.3
    assert read_stage_json(None) is None
    with pytest.raises(ValueError, match="refine.crf.bg_thres"):
        resolve_crf(section, None)


def test_crf_search_takes_crf_planes_best_plane_and_drops_the_search_keys():
    section = {"bg_thres": "search", "unary": "labels", "split": "train_aug", "search_planes": [0.3, 0.4],
               "search_images": 200}
    plane = {"planes": [0.3, 0.4], "miou_per_plane": [60.0, 62.0], "best_plane": 0.4}
    assert resolve_crf(section, None, plane) == {"bg_thres": 0.4, "unary": "labels", "split": "train_aug"}
    assert resolve_crf({**section, "bg_thres": 0.3}, None, None) == {"bg_thres": 0.3, "unary": "labels",
                                                                     "split": "train_aug"}
    with pytest.raises(ValueError, match="refine.crf.bg_thres: 'search' needs crf_plane"):
        resolve_crf(section, CAM_EVAL, None)


def test_precisions_from_a_hand_made_confusion():
    # rows: ground truth (background, class 1, class 2); columns: prediction
    conf = np.array([[90, 6, 4], [10, 30, 0], [0, 5, 15]])
    assert background_precision(conf) == pytest.approx(90 / 100)
    assert foreground_precision(conf) == pytest.approx(45 / 60)
    assert np.isnan(background_precision(np.zeros((3, 3)))) and np.isnan(foreground_precision(np.zeros((3, 3))))


def test_random_walk_auto_meets_the_cams_at_their_best_threshold():
    walk = {"beta": 10, "exp_times": 4, "radius": 5, "bg_thres": 0.25, "background": "walk", "alpha": 1.0}
    assert resolve_random_walk(walk, None) == walk                       # hand values: nothing read
    assert resolve_random_walk({**walk, "alpha": "auto"}, CAM_EVAL)["alpha"] == pytest.approx(1.0)  # t* 0.5
    broad = {**CAM_EVAL, "best_threshold": 0.7}
    resolved = resolve_random_walk({**walk, "alpha": "auto", "bg_thres": "auto"}, broad)
    assert resolved["bg_thres"] == 0.7 and resolved["alpha"] == pytest.approx(walk_alpha(0.7))
    assert 0.29 < walk_alpha(0.7) < 0.30
    # the walked background plane and a class map cross exactly at the best threshold
    cams = torch.tensor([0.69, 0.7, 0.71], dtype=torch.float64).reshape(1, 1, 3)
    plane = background_plane(cams, resolved["alpha"])[0, 0]
    assert plane[0] > cams[0, 0, 0] and plane[1] == pytest.approx(0.7) and plane[2] < cams[0, 0, 2]
    with pytest.raises(ValueError, match="refine.random_walk.alpha: 'auto' needs the CAMs' evaluation"):
        resolve_random_walk({**walk, "alpha": "auto"}, None)
