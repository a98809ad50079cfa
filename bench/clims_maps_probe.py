"""Where a CAM network's maps sit, by region, in the two spaces CLIMS can train (README "Which maps CLIMS trains").

For a finished run folder (e.g. one of bench/world_study.py's), over the pixel-labelled train split:
- per trained network (results/cam/<method>-<hash>/model.pt), per class and region (the class's object, other
  objects, its co-occurring stuff from eval.confounders, other stuff, unlabelled background): the mean of the
  sigmoid map (what CLIMS scores by default) and of the normalised CAM (ReLU over the map's max: what make_cams
  outputs), single scale;
- per stored CAM set (results/cams/*/train.h5) at its best threshold (eval_train.json): where each class's predicted
  pixels lie, as shares of that class's prediction.

    python bench/clims_maps_probe.py /tmp/world_study/reduced-other_four-s0

Needs the world's stuff masks (SegmentationStuff/), as the demo worlds have.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from clims_core.data.manifest import Manifest
from clims_core.io.cam_store import CamStore
from clims_core.io.images import read_rgb
from clims_core.losses.cam import normalised_cams
from clims_core.metrics.results import load_ground_truth, load_stuff_mask
from clims_core.metrics.segmentation import cams_to_label
from clims_core.models.cam_net import load_cam_model

REGIONS = ("object", "other objects", "its stuff", "other stuff", "unlabelled")


def regions(gt: np.ndarray, stuff: np.ndarray, cls: int, home: int | None) -> dict[str, np.ndarray]:
    """Boolean masks of the five regions for class index ``cls`` (1-based, as in ``gt``)."""
    background = gt == 0
    home_mask = background & (stuff == home) if home else np.zeros_like(background)
    return {"object": gt == cls, "other objects": (gt > 0) & (gt != cls) & (gt != 255), "its stuff": home_mask,
            "other stuff": background & (stuff > 0) & ~home_mask, "unlabelled": background & (stuff == 0)}


def labelled_items(manifest: Manifest) -> list[dict]:
    return [item for item in manifest.splits["train"] if item.get("mask")]


def map_means(manifest: Manifest, homes: dict[int, int], model_path: Path) -> dict:
    """(class, space, region) -> mean map value over the images where the region has pixels."""
    model, _ = load_cam_model(model_path)
    sums: dict[tuple[str, str, str], list[float]] = {}
    for item in labelled_items(manifest):
        keys = np.flatnonzero(item["labels"])
        gt = load_ground_truth(manifest, item, "train")
        stuff = load_stuff_mask(manifest.root / "SegmentationStuff", item["id"])
        image = read_rgb(manifest.image_path(item["id"])).astype(np.float32) / 255
        with torch.no_grad():
            scores = model.maps_from(model.features(torch.from_numpy(image).permute(2, 0, 1)[None]))
            scores = F.interpolate(scores, size=gt.shape, mode="bilinear", align_corners=False)[0, keys]
        spaces = {"sigmoid": torch.sigmoid(scores).numpy(), "normalised CAM": normalised_cams(scores).numpy()}
        for index, cls in enumerate(keys):
            for name, mask in regions(gt, stuff, cls + 1, homes.get(cls)).items():
                if mask.sum() >= 20:
                    for space, maps in spaces.items():
                        sums.setdefault((manifest.classes[cls], space, name), []).append(float(maps[index][mask].mean()))
    return {key: float(np.mean(values)) for key, values in sums.items()}


def prediction_shares(manifest: Manifest, homes: dict[int, int], store_dir: Path) -> tuple[float, dict]:
    """Per class: the share (%) of its predicted pixels (at the store's best threshold) in each region."""
    threshold = json.loads((store_dir / "eval_train.json").read_text())["best_threshold"]
    counts = {c: dict.fromkeys(REGIONS, 0) for c in manifest.classes}
    with CamStore(store_dir / "train.h5") as store:
        for item in labelled_items(manifest):
            keys, cams = store.read(item["id"])
            gt = load_ground_truth(manifest, item, "train")
            stuff = load_stuff_mask(manifest.root / "SegmentationStuff", item["id"])
            predicted = cams_to_label(cams, keys, threshold)
            for cls in np.flatnonzero(item["labels"]):
                mine = predicted == cls + 1
                for name, mask in regions(gt, stuff, cls + 1, homes.get(cls)).items():
                    counts[manifest.classes[cls]][name] += int((mine & mask).sum())
    shares = {c: {r: 100 * n / max(sum(row.values()), 1) for r, n in row.items()} for c, row in counts.items()}
    return threshold, shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run folder (config.yaml, results/)")
    args = parser.parse_args()
    config = yaml.safe_load((args.run / "config.yaml").read_text())
    manifest = Manifest.load(next((args.run / "results" / "data").glob("*/manifest.json")))
    pairs = {c: s for c, s in config["eval"]["confounders"].items() if s}
    homes = {manifest.classes.index(c): manifest.stuff_classes.index(s) + 1 for c, s in pairs.items()
             if c in manifest.classes and s in manifest.stuff_classes}
    header = f"{'class':10} {'space':15} " + " ".join(f"{r:>13}" for r in REGIONS)
    for model_path in sorted((args.run / "results" / "cam").glob("*/model.pt")):
        means = map_means(manifest, homes, model_path)
        print(f"\n{model_path.parent.name}: mean map value per region (single scale)\n{header}")
        for cls in manifest.classes:
            for space in ("sigmoid", "normalised CAM"):
                print(f"{cls:10} {space:15} " + " ".join(f"{means.get((cls, space, r), float('nan')):13.3f}"
                                                         for r in REGIONS))
    for store_dir in sorted((args.run / "results" / "cams").glob("*")):
        if not (store_dir / "eval_train.json").is_file():
            continue
        threshold, shares = prediction_shares(manifest, homes, store_dir)
        print(f"\n{store_dir.name}: where each class's predicted pixels lie (%), threshold {threshold}\n"
              f"{'class':10} " + " ".join(f"{r:>13}" for r in REGIONS))
        for cls, row in shares.items():
            print(f"{cls:10} " + " ".join(f"{row[r]:13.1f}" for r in REGIONS))


if __name__ == "__main__":
    main()
