"""How many predicted objects guided cutout cuts per image, under CCT's contour rule and under the area rule.

Decoder-like predictions: per image, 1-4 object classes whose logits are Gaussian-smoothed noise on the features'
grid (stride 8) against a flat background logit (about a third of the map foreground), brought to the crop by the
decoder's upsampling (``bilinear``, or ``nearest`` as CCT's sub-pixel decoder starts from ICNR), then argmax. For each
rule: the regions it selects, and the images where its cut reaches at least one feature position.

- ``cct_contours``: outer contours of the prediction (crop size) with more than 50 CHAIN_APPROX_SIMPLE points;
- ``area``: 4-connected regions of at least 0.002 of the features' grid (how the area rule is applied).

    .venv/bin/python bench/bench_cutout_regions.py [--crop 320] [--images 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from clims_core.models.cct import perturbations as P


def predictions(n: int, crop: int, upsample: str, rng: np.random.Generator, n_classes: int = 21) -> torch.Tensor:
    """``n x C x crop x crop`` logits of blobby objects, smooth on the stride-8 grid."""
    side = crop // 8
    logits = np.zeros((n, n_classes, side, side), dtype=np.float32)
    for i in range(n):
        for cls in rng.choice(np.arange(1, n_classes), size=rng.integers(1, 5), replace=False):
            noise = ndimage.gaussian_filter(rng.standard_normal((side, side)), sigma=rng.uniform(1.5, 3.5))
            logits[i, cls] = noise / noise.std()
        logits[i, 0] = 1.0  # background wins where no object logit exceeds 1 sigma (about a third foreground)
    small = torch.from_numpy(logits)
    if upsample == "nearest":
        return F.interpolate(small, scale_factor=8, mode="nearest")
    return F.interpolate(small, scale_factor=8, mode="bilinear", align_corners=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    report = {}
    for upsample in ("bilinear", "nearest"):
        logits = predictions(args.images, args.crop, upsample, np.random.default_rng(args.seed))
        full = P.foreground_mask(logits, (args.crop, args.crop))
        small = P.foreground_mask(logits, (args.crop // 8, args.crop // 8))
        contour = P.contour_boxes(full, 50)
        area = P.object_boxes(small, 0.002)
        cut_contour = P.contour_cutout_mask(contour, (args.crop, args.crop), tuple(small.shape[-2:]))
        cut_area = P.cutout_mask(area, tuple(small.shape[-2:]))
        counts = {"cct_contours": [len(b) for b in contour], "area": [len(b) for b in area]}
        report[upsample] = {
            "foreground_share": round(float(full.mean()), 3),
            **{f"{rule}_regions_p10_median_p90": [int(np.percentile(c, q)) for q in (10, 50, 90)]
               for rule, c in counts.items()},
            **{f"{rule}_regions_mean": round(float(np.mean(c)), 2) for rule, c in counts.items()},
            "cct_contours_images_with_a_cut_on_the_features": round(float((cut_contour == 0).flatten(1).any(1)
                                                                            .float().mean()), 3),
            "area_images_with_a_cut_on_the_features": round(float((cut_area == 0).flatten(1).any(1).float().mean()), 3),
        }
    print(json.dumps({"crop": args.crop, "images": args.images, **report}, indent=1))


if __name__ == "__main__":
    main()
