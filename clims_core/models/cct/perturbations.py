"""CCT's perturbations of the encoder output (Ouali et al., CVPR 2020, Sec. 3.2), as functions of a feature map.

Each auxiliary decoder sees the shared encoder features through one of these; the consistency loss then asks its
prediction to match the main decoder's. Feature-based: noise, dropout of the most active region, spatial dropout.
Prediction-based (guided by the main decoder's detached prediction): object masking, context masking, guided cutout,
intermediate VAT. ``foreground`` maps below are ``N x 1 x h x w`` floats in {0, 1} at the features' size: 1 where the
main prediction's argmax is a class (not background).

Randomness comes from torch's global generator (seeded by the training stage), so a run is reproducible on one device.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

Box = tuple[float, float, float, float]  # top, left, height, width as fractions of the map


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


def feature_dropout(x: torch.Tensor, low: float = 0.6, high: float = 0.9) -> torch.Tensor:
    """Drop the most active region: zero every position whose channel-mean activation reaches ``gamma * max`` of its
    image, ``gamma ~ U(low, high)`` drawn once per batch (CCT's FeatureDropDecoder)."""
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
    """Per image, the bounding box of each connected foreground region covering at least ``min_area`` of the map.

    CCT finds outer contours with OpenCV and keeps those longer than 50 points (at 320 px, objects of roughly
    12 x 12 px and up); an area share says the same independently of the map's resolution. Boxes are fractions of the
    map so the caller may compute them at the prediction's size and apply them at the features' size.
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


def cutout_mask(boxes: list[list[Box]], size: tuple[int, int], erase: float = 0.4,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """``N x 1 x h x w`` mask that is 0 on one random ``erase``-sized rectangle inside each object box, 1 elsewhere
    (CCT's guided cutout: the rectangle's sides are ``erase`` times the box's, at a uniform position in the box)."""
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
    """Erase a random part of each predicted object (drops features the prediction of that object relies on)."""
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
