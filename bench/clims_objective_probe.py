"""Does CLIMS's objective prefer a class's true mask, or the mask flooded onto its co-occurring stuff? Per CLIP.

For a finished run folder (e.g. one of bench/world_study.py's), over the pixel-labelled train split: for each
confounder pair (class, stuff) of ``eval.confounders`` and each CLIP the run made (results/clip/pretrain-*,
finetune-*), the CLIMS loss terms (OTM, BTM, CBS, with the run's ``cam.clims`` settings and weights; REG left out, it
only counts area) of the ground-truth maps, once with the class's map = its object mask and once = object + its
stuff. A flood that costs the objective nothing, or lowers it, is a flood CLIMS is free to learn (README "Which
CLIP CLIMS scores with").

    python bench/clims_objective_probe.py /tmp/world_study/reduced-small_parts-s1

Needs the world's stuff masks (SegmentationStuff/), as the demo worlds have.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from clims_core.data.manifest import Manifest
from clims_core.io.images import read_rgb
from clims_core.methods.clims_objective import ClimsObjective
from clims_core.methods.clims_settings import ClimsSettings, resolve_clims_section
from clims_core.metrics.results import load_ground_truth, load_stuff_mask
from clims_core.models.clip import load_clip

MIN_FRACTION = 0.01  # object and stuff each at least 1% of the image


def pair_samples(manifest: Manifest, cls: int, stuff_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images (N x 3 x H x W in [0, 1]) labelled with ``cls`` (0-based) where its stuff (1-based) shows, with the
    object's mask and the object + stuff mask (N x H x W)."""
    images, objects, floods = [], [], []
    for item in manifest.splits["train"]:
        if not item.get("mask") or not item["labels"][cls]:
            continue
        gt = load_ground_truth(manifest, item, "train")
        stuff = load_stuff_mask(manifest.root / "SegmentationStuff", item["id"])
        obj, home = gt == cls + 1, (gt == 0) & (stuff == stuff_id)
        if obj.mean() < MIN_FRACTION or home.mean() < MIN_FRACTION:
            continue
        images.append(read_rgb(manifest.image_path(item["id"])).astype(np.float32).transpose(2, 0, 1) / 255)
        objects.append(obj)
        floods.append(obj | home)
    as_tensor = lambda arrays: torch.from_numpy(np.stack(arrays).astype(np.float32))  # noqa: E731
    return as_tensor(images), as_tensor(objects), as_tensor(floods)


def loss_terms(objective: ClimsObjective, images: torch.Tensor, masks: torch.Tensor, cls: int) -> dict[str, float]:
    """OTM, BTM, CBS (each times its weight) and their sum for ``masks`` as class ``cls``'s only positive map."""
    k = len(objective.classes)
    maps = torch.zeros(len(images), k, *images.shape[-2:])
    maps[:, cls] = masks
    labels = torch.zeros(len(images), k)
    labels[:, cls] = 1
    with torch.no_grad():
        _, parts = objective(images, maps, labels)
    w = objective.settings.loss_weights
    terms = {"otm": w[0] * parts["otm"], "btm": w[1] * parts["btm"], "cbs": w[2] * parts["cbs"]}
    return {**terms, "sum": sum(terms.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run folder (config.yaml, results/)")
    parser.add_argument("--config", type=Path, default=None,
                        help="the config whose cam.clims settings are scored (default: the run's config.yaml; a world "
                             "study's is its last recipe's, config-<recipe>.yaml each recipe's)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config_path = args.config or args.run / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    manifest = Manifest.load(next((args.run / "results" / "data").glob("*/manifest.json")))
    confounders = config["eval"]["confounders"]
    section = resolve_clims_section(config["cam"]["clims"], manifest.stuff_classes, confounders, manifest.classes)
    settings = ClimsSettings.from_config(section)
    clips = sorted((args.run / "results" / "clip").glob("pretrain-*/clip.pt"))
    clips += sorted((args.run / "results" / "clip").glob("finetune-*/clip.pt"))
    samples = {(c, s): pair_samples(manifest, manifest.classes.index(c), manifest.stuff_classes.index(s) + 1)
               for c, s in confounders.items() if s and c in manifest.classes and s in manifest.stuff_classes}
    print(f"{config_path}: weights (OTM, BTM, CBS, REG) {list(settings.loss_weights)}; flooded minus true mask, > 0: "
          "the objective prefers the true mask")
    for path in clips:
        objective = ClimsObjective(load_clip(None, str(path), "cpu").freeze(), manifest.classes, settings)
        metrics = json.loads((path.parent / "metrics.json").read_text())
        wise = metrics.get("weight_interpolation")
        label = f"{path.parent.name} (weight_interpolation {wise})" if wise is not None else path.parent.name
        print(f"\n{label}\n{'pair':16} {'images':>6} " +
              " ".join(f"{t:>22}" for t in ("OTM true/flood", "BTM true/flood", "CBS true/flood", "sum: flood - true")))
        for (c, s), (images, objects, floods) in samples.items():
            if not len(images):
                continue
            cls = manifest.classes.index(c)
            true, flood = loss_terms(objective, images, objects, cls), loss_terms(objective, images, floods, cls)
            cells = [f"{true[t]:10.3f} / {flood[t]:9.3f}" for t in ("otm", "btm", "cbs")]
            print(f"{c + '/' + s:16} {len(images):6d} " + " ".join(f"{x:>22}" for x in cells) +
                  f" {flood['sum'] - true['sum']:+22.3f}")


if __name__ == "__main__":
    main()
