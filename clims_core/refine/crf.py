"""denseCRF (pydensecrf) on label maps and on CAM scores, with IRNet's settings by default.

IRNet's ``crf_inference_label``: the unary comes from a label map (``gt_prob`` on the given label, the rest spread over
the others), a Gaussian kernel (sxy 3, compat 3) smooths and a bilateral kernel (sxy 50, srgb 5, compat 10) snaps
labels to colour edges; 10 mean-field iterations. The pairwise terms depend on the image only, so one
:class:`ImageCrf` builds them once and serves several unaries (the confident-foreground and confident-background maps
of :func:`ir_label` share them, which saves about a fifth of the time per image).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_labels, unary_from_softmax

from clims_core.io.masks import IGNORE_INDEX
from clims_core.refine.labels import key_lookup, threshold_labels


@dataclass(frozen=True)
class CrfSettings:
    """IRNet's ``crf_inference_label`` settings (misc/imutils.py)."""

    iterations: int = 10
    gt_prob: float = 0.7
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 50.0
    bilateral_srgb: float = 5.0
    bilateral_compat: float = 10.0

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"densecrf iterations: expected >= 1, got {self.iterations}")
        if not 0 < self.gt_prob < 1:
            raise ValueError(f"densecrf gt_prob: expected a probability in (0, 1), got {self.gt_prob}")


class ImageCrf:
    """The pairwise terms of one RGB image (H x W x 3 uint8) for ``n_labels`` labels; call with a unary, get labels."""

    def __init__(self, image: np.ndarray, n_labels: int, settings: CrfSettings):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"denseCRF needs an H x W x 3 uint8 image, got {image.dtype} {image.shape}")
        if n_labels < 1:
            raise ValueError(f"denseCRF needs at least one label, got {n_labels}")
        self.height, self.width = image.shape[:2]
        self.n_labels, self.settings = n_labels, settings
        self._crf = None
        self._image = np.ascontiguousarray(image)  # pydensecrf wants a writable, C-contiguous buffer

    def _model(self) -> "dcrf.DenseCRF2D":
        if self._crf is None:  # built on first use: a single-label map never needs it
            crf = dcrf.DenseCRF2D(self.width, self.height, self.n_labels)
            crf.setUnaryEnergy(np.zeros((self.n_labels, self.height * self.width), dtype=np.float32))
            s = self.settings
            crf.addPairwiseGaussian(sxy=s.gaussian_sxy, compat=s.gaussian_compat)
            crf.addPairwiseBilateral(sxy=s.bilateral_sxy, srgb=s.bilateral_srgb, rgbim=self._image,
                                     compat=s.bilateral_compat)
            self._crf = crf
        return self._crf

    def _infer(self, unary: np.ndarray) -> np.ndarray:
        crf = self._model()
        crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
        q = np.asarray(crf.inference(self.settings.iterations), dtype=np.float32)
        return q.reshape(self.n_labels, self.height, self.width).argmax(axis=0)

    def labels(self, label_map: np.ndarray) -> np.ndarray:
        """IRNet's ``crf_inference_label``: refine a map of indices 0..n_labels-1; returns int64 indices.

        A map holding one label only comes back unchanged without running the CRF: every pixel's unary prefers that
        label and the Potts terms reward agreement, so mean-field cannot move any pixel away from it.
        """
        if label_map.shape != (self.height, self.width):
            raise ValueError(f"label map {label_map.shape} does not fit the image {(self.height, self.width)}")
        if label_map.size and (label_map.min() < 0 or label_map.max() >= self.n_labels):
            raise ValueError(f"label map holds indices outside 0..{self.n_labels - 1}")
        if self.n_labels == 1 or np.all(label_map == label_map.flat[0]):
            return label_map.astype(np.int64)
        unary = unary_from_labels(label_map, self.n_labels, gt_prob=self.settings.gt_prob, zero_unsure=False)
        return self._infer(unary)

    def scores(self, probabilities: np.ndarray) -> np.ndarray:
        """CRF with the unary ``-log p`` of per-label probabilities (n_labels x H x W, each pixel summing to 1)."""
        if probabilities.shape != (self.n_labels, self.height, self.width):
            raise ValueError(f"probabilities {probabilities.shape} do not fit "
                             f"{(self.n_labels, self.height, self.width)}")
        if self.n_labels == 1:
            return np.zeros((self.height, self.width), dtype=np.int64)
        return self._infer(unary_from_softmax(probabilities.astype(np.float32)))


def ir_label(image: np.ndarray, cams: np.ndarray, keys: np.ndarray, fg_thres: float, bg_thres: float,
             settings: CrfSettings) -> np.ndarray:
    """IRNet's ``cam_to_ir_label``: confident foreground and confident background, everything else ignored.

    Both maps are the CAMs padded with a background plane (``fg_thres``, high: only strong activations are
    foreground; ``bg_thres``, low: only pixels no class reaches are background), each refined by the CRF. A pixel is
    its class where the foreground map says so, background where both maps say background, 255 elsewhere.
    """
    if not 0 < bg_thres <= fg_thres < 1:
        raise ValueError(f"ir_label: expected 0 < bg_thres <= fg_thres < 1, got bg_thres {bg_thres}, "
                         f"fg_thres {fg_thres}")
    lookup = key_lookup(keys)
    crf = ImageCrf(image, len(lookup), settings)
    fg_conf = lookup[crf.labels(threshold_labels(cams, fg_thres))]
    bg_conf = lookup[crf.labels(threshold_labels(cams, bg_thres))]
    conf = fg_conf.copy()
    conf[fg_conf == 0] = IGNORE_INDEX
    conf[(fg_conf == 0) & (bg_conf == 0)] = 0
    return conf


UNARIES = ("labels", "scores")  # crf_mask's unary choices (refine.crf.unary)


def crf_mask(image: np.ndarray, cams: np.ndarray, keys: np.ndarray, bg_thres: float, settings: CrfSettings,
             unary: str = "labels") -> np.ndarray:
    """The cheap refiner: the CAMs thresholded at ``bg_thres`` and snapped to the image by the CRF.

    ``unary="labels"`` refines the thresholded label map (IRNet's CRF, ``gt_prob`` confidence everywhere);
    ``unary="scores"`` uses the CAMs themselves as probabilities (background plane ``bg_thres``, each pixel's planes
    divided by their sum), so weak activations give way to colour edges more easily than strong ones.
    """
    lookup = key_lookup(keys)
    crf = ImageCrf(image, len(lookup), settings)
    if unary == "labels":
        return lookup[crf.labels(threshold_labels(cams, bg_thres))]
    if unary == "scores":
        planes = np.concatenate([np.full((1, *cams.shape[1:]), bg_thres, dtype=np.float32),
                                 np.clip(cams.astype(np.float32), 1e-5, None)])
        return lookup[crf.scores(planes / planes.sum(axis=0, keepdims=True))]
    raise ValueError(f"crf unary: expected labels or scores, got {unary!r}")
