"""CCT's perturbations of the encoder output (Ouali et al., CVPR 2020, Sec. 3.2), as functions of a feature map.

Each auxiliary decoder sees the shared encoder features through one of these; the consistency loss then asks its
prediction to match the main decoder's. Feature-based: noise, dropout of the most active region, spatial dropout.
Prediction-based (guided by the main decoder's detached prediction): object masking, context masking, guided cutout,
intermediate VAT. ``foreground`` maps below are ``N x 1 x h x w`` floats in {0, 1}: 1 where the main prediction's
argmax is a class (not background), all classes together (CCT's ``argmax(1) > 0``); at the features' size unless said
otherwise (guided cutout's contours are found at the prediction's size, as CCT does).

Randomness comes from torch's global generator (seeded by the training stage), so a run is reproducible on one device.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

Box = tuple[float, float, float, float]  # top, left, height, width as fractions of the map
PixelBox = tuple[int, int, int, int]  # top, left, bottom, right: extreme contour points (inclusive), in pixels
CUTOUT_REGIONS = ("cct_contours", "area")  # which predicted regions guided cutout erases a part of


def foreground_mask(prediction: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``N x 1 x h x w`` {0, 1}: where the argmax of a ``N x C x H x W`` prediction is not background (class 0),
    resized to ``size`` by nearest neighbour (CCT's ``guided_masking``)."""
    mask = (prediction.argmax(dim=1, keepdim=True) > 0).float()
    return mask if mask.shape[-2:] == tuple(size) else F.interpolate(mask, size=size, mode="nearest")


def feature_noise(x: torch.Tensor, uniform_range: float = 0.3) -> torch.Tensor:
    """Multiplicative uniform noise ``x + x * n``, ``n ~ U(-r, r)`` of shape ``C x h x w``, shared by the batch
    (as CCT)."""
    noise = torch.empty(x.shape[1:], device=x.device, dtype=x.dtype).uniform_(-uniform_range, uniform_range)
    return x + x * noise.unsqueeze(0)


def feature_dropout(x: torch.Tensor, low: float = 0.7, high: float = 0.9) -> torch.Tensor:
    """Drop the most active region: zero every position whose channel-mean activation reaches ``gamma * max`` of its
    image, ``gamma ~ U(low, high)`` drawn once per batch. CCT's FeatureDropDecoder (master, 65d4e5b) draws
    ``U(0.7, 0.9)``; the ``U(0.6, 0.9)`` of some copies is pull request #29's commit 17df50b, never merged."""
    attention = x.mean(dim=1, keepdim=True)
    peak = attention.flatten(1).max(dim=1).values.view(-1, 1, 1, 1)
    gamma = float(torch.empty(()).uniform_(low, high))
    return x * (attention < peak * gamma).to(x.dtype)


def spatial_dropout(x: torch.Tensor, rate: float = 0.5, spatial: bool = True) -> torch.Tensor:
    """Dropout of whole channels (``spatial``, CCT's default) or of single activations; always active (it is only
    used in training)."""
    return F.dropout2d(x, rate, training=True) if spatial else F.dropout(x, rate, training=True)


def object_masking(x: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
    """Mask the objects out: keep only the features the main decoder predicts as background."""
    return x * (1 - foreground)


def context_masking(x: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
    """Mask the context out: keep only the features the main decoder predicts as objects."""
    return x * foreground


def object_boxes(foreground: torch.Tensor, min_area: float = 0.002) -> list[list[Box]]:
    """Per image, the bounding box of each 4-connected foreground region covering at least ``min_area`` of the map
    (guided cutout's ``area`` rule, not CCT's: see :func:`contour_boxes`).

    An area share does not depend on the map's resolution, so the CCT model applies it on the features' grid. It
    selects more regions than CCT's rule: rectangles of any size, and compact blobs whose outline has 50 points or
    fewer. Boxes are fractions of the map.
    """
    masks = foreground[:, 0].detach().cpu().numpy() > 0.5
    height, width = masks.shape[1:]
    boxes: list[list[Box]] = []
    for mask in masks:
        labels, count = ndimage.label(mask)
        if count == 0:
            boxes.append([])
            continue
        areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        found = []
        for index, region in enumerate(ndimage.find_objects(labels)):
            if region is not None and areas[index] >= min_area * height * width:
                rows, cols = region
                found.append((rows.start / height, cols.start / width, (rows.stop - rows.start) / height,
                              (cols.stop - cols.start) / width))
        boxes.append(found)
    return boxes


def contour_boxes(foreground: torch.Tensor, min_points: int = 50) -> list[list[PixelBox]]:
    """Per image, the extreme points of each outer contour with more than ``min_points`` points (CCT's rule).

    As CCT's ``guided_cutout``: OpenCV's outer contours (``RETR_EXTERNAL``: 8-connected regions; one inside another's
    hole is not its own) of the foreground, all classes together, compressed by ``CHAIN_APPROX_SIMPLE`` (a straight
    horizontal, vertical or diagonal run keeps only its end points). The count is of corners, not of size: a filled
    rectangle has 4 points and is never selected; a disc gets about 2.8 points per pixel of radius and passes 50 from
    a radius of 18 px (15 px already gives 52, 17 px 48). Run it on the prediction's own grid (CCT's ``pred``, at the
    input size): the count depends on the resolution.
    """
    masks = np.ascontiguousarray(foreground[:, 0].detach().cpu().numpy() > 0.5, dtype=np.uint8)
    boxes: list[list[PixelBox]] = []
    for mask in masks:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        found = []
        for contour in contours:
            if len(contour) > min_points:
                points = contour.reshape(-1, 2)  # (x, y)
                found.append((int(points[:, 1].min()), int(points[:, 0].min()), int(points[:, 1].max()),
                              int(points[:, 0].max())))
        boxes.append(found)
    return boxes


def contour_cutout_mask(boxes: list[list[PixelBox]], map_size: tuple[int, int], size: tuple[int, int],
                        erase: float = 0.4, device: torch.device | str = "cpu") -> torch.Tensor:
    """``N x 1 x h x w`` mask at ``size`` that is 0 on one random rectangle per box (CCT's guided cutout arithmetic).

    On the ``map_size`` grid the boxes were found on: with the box's extent ``e = max - min`` of its contour points
    (one less than its pixel span), the rectangle's side is ``int(e * erase)`` at an offset drawn uniformly from
    ``0 .. int(e * (1 - erase))`` from the box's minimum, per axis. The mask is then brought to ``size`` by nearest
    neighbour, as CCT does, so a cut thinner than the features' stride may miss every feature position. (Only the
    map pixels that nearest neighbour reads are tested, found with ``F.interpolate`` itself, so the result is that
    of resizing the full mask without building it, in a tenth of the time at 320 px.)
    """
    height, width = map_size
    rows = _nearest_sources(height, size[0])
    cols = _nearest_sources(width, size[1])
    mask = torch.ones(len(boxes), 1, *size)
    for index, image_boxes in enumerate(boxes):
        for top, left, bottom, right in image_boxes:
            extent_h, extent_w = bottom - top, right - left
            dy = int(torch.randint(0, int(extent_h * (1 - erase)) + 1, ()))
            dx = int(torch.randint(0, int(extent_w * (1 - erase)) + 1, ()))
            y0, x0 = top + dy, left + dx
            hit_rows = (rows >= y0) & (rows < y0 + int(extent_h * erase))
            hit_cols = (cols >= x0) & (cols < x0 + int(extent_w * erase))
            mask[index, 0][hit_rows[:, None] & hit_cols[None, :]] = 0
    return mask.to(device)


def _nearest_sources(source: int, target: int) -> torch.Tensor:
    """For each of ``target`` positions, the source index ``F.interpolate(mode="nearest")`` reads."""
    index = torch.arange(source, dtype=torch.float64).view(1, 1, source)
    return F.interpolate(index, size=target, mode="nearest").view(target).long()


def cutout_mask(boxes: list[list[Box]], size: tuple[int, int], erase: float = 0.4,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """``N x 1 x h x w`` mask that is 0 on one random rectangle inside each fractional object box, 1 elsewhere (the
    ``area`` rule's cut, on the grid it is applied to: sides ``int(erase * span)`` of the box's pixel span, at a
    uniform position inside the box)."""
    height, width = size
    mask = torch.ones(len(boxes), 1, height, width, device=device)
    for index, image_boxes in enumerate(boxes):
        for top, left, box_h, box_w in image_boxes:
            top_px, left_px = round(top * height), round(left * width)
            h_px, w_px = max(1, round(box_h * height)), max(1, round(box_w * width))
            cut_h, cut_w = int(h_px * erase), int(w_px * erase)
            if cut_h == 0 or cut_w == 0:
                continue
            dy = int(torch.randint(0, h_px - cut_h + 1, ()))
            dx = int(torch.randint(0, w_px - cut_w + 1, ()))
            mask[index, 0, top_px + dy:top_px + dy + cut_h, left_px + dx:left_px + dx + cut_w] = 0
    return mask


def guided_cutout(x: torch.Tensor, boxes: list[list[Box]], erase: float = 0.4) -> torch.Tensor:
    """Erase a random part of each predicted object (drops features the prediction of that object relies on): the
    ``area`` rule's boxes, cut on the features' grid (see :func:`contour_cutout_mask` for CCT's)."""
    return x * cutout_mask(boxes, tuple(x.shape[-2:]), erase, x.device).to(x.dtype)


def _l2_normalize(d: torch.Tensor) -> torch.Tensor:
    """Each sample's tensor divided by its L2 norm (over all but the batch dimension)."""
    return d / (d.flatten(1).norm(dim=1).view(-1, *([1] * (d.dim() - 1))) + 1e-8)


def vat_perturbation(x: torch.Tensor, decoder: Callable[[torch.Tensor], torch.Tensor], xi: float = 1e-6,
                     eps: float = 2.0, iterations: int = 1) -> torch.Tensor:
    """Intermediate virtual adversarial perturbation ``r_adv`` of the features (Miyato et al.; CCT's VATDecoder).

    One power iteration from a random direction ``d``: the gradient of KL(p(x) || p(x + xi d)) with respect to ``d``,
    normalised and scaled to ``eps``. The gradient is taken with ``torch.autograd.grad`` on ``d`` alone, so the
    decoder's parameter gradients are untouched (CCT calls ``backward()`` and then zeroes the decoder's gradients).
    """
    x = x.detach()
    with torch.no_grad():
        target = F.softmax(decoder(x), dim=1)
    d = _l2_normalize(torch.rand_like(x) - 0.5)
    for _ in range(iterations):
        d.requires_grad_(True)
        with torch.enable_grad():
            log_prob = F.log_softmax(decoder(x + xi * d), dim=1)
            distance = F.kl_div(log_prob, target, reduction="batchmean")
            (grad,) = torch.autograd.grad(distance, d)
        d = _l2_normalize(grad.detach())
    return eps * d
