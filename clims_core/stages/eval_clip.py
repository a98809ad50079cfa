"""Stage ``eval_clip``: zero-shot checks of each CLIP the workflow uses (pretrained and fine-tuned side by side).

- Multi-label mAP on val: score every image against every class prompt; AP per class over images.
- The stuff test (datasets with ``SegmentationStuff/``): for object-only and stuff-only masked crops of val images
  (from the ground-truth masks), is the right word the best match among all class and stuff words? CLIMS scores masked
  images against class and background words, so this is exactly what it relies on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clims_core.data.captions import load_images
from clims_core.data.manifest import Manifest
from clims_core.device import pick_device
from clims_core.io.atomic import write_json, write_text
from clims_core.io.images import read_rgb
from clims_core.io.masks import load_mask
from clims_core.metrics.ranking import mean_average_precision
from clims_core.models.clip import LoadedClip, load_clip
from clims_core.models.prompts import display_name, fill
from clims_core.training.contrastive import encode_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalClipSettings:
    object_prompt: str = "a photo of {article} {name}."
    stuff_prompt: str = "a photo of {name}."
    class_names: dict[str, str] = field(default_factory=dict)
    split: str = "val"
    min_region_fraction: float = 0.01  # regions smaller than this share of the image are not tested (too few pixels)
    crop_margin: float = 0.1
    device: str = "auto"
    threads: int = 1


@dataclass
class MaskedCrops:
    """uint8 N x 3 x S x S crops with the index of the right word for each."""

    images: np.ndarray
    truth: np.ndarray
    kind: np.ndarray  # "object" or "stuff"


def masked_crop(image: np.ndarray, region: np.ndarray, size: int, margin: float) -> np.ndarray:
    """The region's pixels (rest black), cropped to its box plus a margin, padded square, resized: 3 x size x size."""
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = int(max(y1 - y0, x1 - x0) * (1 + 2 * margin)) + 1
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    top, left = cy - side // 2, cx - side // 2
    sy0, sx0 = max(0, top), max(0, left)
    sy1, sx1 = min(image.shape[0], top + side), min(image.shape[1], left + side)
    masked = image * region[..., None]
    canvas[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = masked[sy0:sy1, sx0:sx1]
    resized = Image.fromarray(canvas).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized).transpose(2, 0, 1)


def build_masked_crops(manifest: Manifest, split: str, size: int, min_fraction: float, margin: float) -> tuple[MaskedCrops, int]:
    """Object crops (one per class present, union of its instances) and stuff crops of every image with both masks."""
    images, truth, kinds, skipped = [], [], [], 0
    n_classes = len(manifest.classes)
    for item in manifest.splits[split]:
        stuff_path = manifest.root / "SegmentationStuff" / f"{item['id']}.png"
        if not item["mask"] or not stuff_path.is_file():
            continue
        image = read_rgb(manifest.image_path(item["id"]))
        mask, stuff = load_mask(manifest.root / item["mask"]), load_mask(stuff_path)
        regions = [(mask == c + 1, c, "object") for c in range(n_classes)]
        regions += [(stuff == s + 1, n_classes + s, "stuff") for s in range(len(manifest.stuff_classes))]
        for region, word, kind in regions:
            area = region.mean()
            if area == 0:
                continue
            if area < min_fraction:
                skipped += 1
                continue
            images.append(masked_crop(image, region, size, margin))
            truth.append(word)
            kinds.append(kind)
    return MaskedCrops(np.stack(images) if images else np.zeros((0, 3, size, size), np.uint8), np.asarray(truth),
                       np.asarray(kinds)), skipped


@dataclass
class EvalInputs:
    """What every CLIP of one input size is scored on: the split's images and the masked crops (read once)."""

    images: np.ndarray
    crops: MaskedCrops | None
    skipped_small: int


def prepare_inputs(manifest: Manifest, settings: EvalClipSettings, size: int) -> EvalInputs:
    paths = [manifest.image_path(i) for i in manifest.ids(settings.split)]
    images = load_images(paths, size, settings.threads)
    if not manifest.stuff_classes:
        return EvalInputs(images, None, 0)
    crops, skipped = build_masked_crops(manifest, settings.split, size, settings.min_region_fraction, settings.crop_margin)
    return EvalInputs(images, crops, skipped)


@torch.no_grad()
def evaluate(clip: LoadedClip, manifest: Manifest, settings: EvalClipSettings, inputs: EvalInputs,
             name: str = "clip") -> dict:
    class_words = [display_name(c, settings.class_names) for c in manifest.classes]
    stuff_words = [display_name(s, settings.class_names) for s in manifest.stuff_classes]
    prompts = [fill(settings.object_prompt, w) for w in class_words] + [fill(settings.stuff_prompt, w) for w in stuff_words]
    text = clip.encode_text(prompts).float().cpu()
    image_features = encode_images(clip, inputs.images, desc=f"eval_clip[{name}] images")
    scores = (image_features @ text[: len(class_words)].t()).numpy()
    mAP, per_class = mean_average_precision(scores, manifest.labels(settings.split))
    result = {"source": clip.source, "prompts": prompts, "zero_shot_map": mAP,
              "zero_shot_ap": dict(zip(manifest.classes, per_class))}
    crops = inputs.crops
    if crops is not None and len(crops.truth):
        crop_features = encode_images(clip, crops.images, desc=f"eval_clip[{name}] masked crops")
        best = (crop_features @ text.t()).argmax(dim=1).numpy()
        right = best == crops.truth
        words = manifest.classes + manifest.stuff_classes
        result["stuff_test"] = {
            "object_accuracy": float(right[crops.kind == "object"].mean()),
            "stuff_accuracy": float(right[crops.kind == "stuff"].mean()),
            "per_word": {w: float(right[crops.truth == i].mean()) for i, w in enumerate(words) if (crops.truth == i).any()},
            "named_as": named_as(best, crops.truth, words),
            "crops": {"object": int((crops.kind == "object").sum()), "stuff": int((crops.kind == "stuff").sum()),
                      "skipped_small": inputs.skipped_small},
        }
    return result


def named_as(best: np.ndarray, truth: np.ndarray, words: list[str]) -> dict[str, dict[str, float]]:
    """Per word, the share of its crops named as each word (its own included), largest first: what a wrong name was.

    A stuff word's crops named as a class (railroad crops read as "train") would let CLIMS's background term grow
    that class's map onto the stuff (on the worlds measured they were not: README "Which CLIP CLIMS scores with")."""
    shares = {}
    for i, word in enumerate(words):
        mine = best[truth == i]
        if len(mine):
            counts = np.bincount(mine, minlength=len(words)) / len(mine)
            shares[word] = {words[j]: float(counts[j]) for j in np.argsort(-counts, kind="stable") if counts[j] > 0}
    return shares


def to_tsv(results: dict[str, dict]) -> str:
    rows = ["clip\tmetric\tvalue"]
    for name, result in results.items():
        rows.append(f"{name}\tzero_shot_map\t{result['zero_shot_map']:.4f}")
        for key in ("object_accuracy", "stuff_accuracy"):
            if "stuff_test" in result:
                rows.append(f"{name}\tstuff_test.{key}\t{result['stuff_test'][key]:.4f}")
    return "\n".join(rows) + "\n"


def run(settings: EvalClipSettings, manifest_path: str | Path, clips: dict[str, tuple[str | None, str | None]],
        json_path: str | Path, tsv_path: str | Path) -> dict:
    """Evaluate each named ``(model, weights)`` CLIP; write JSON + TSV."""
    device = pick_device(settings.device, settings.threads)
    manifest = Manifest.load(manifest_path)
    results = {}
    inputs: dict[int, EvalInputs] = {}  # by CLIP input size: pretrained and fine-tuned CLIPs share one
    for name, (model, weights) in clips.items():
        clip = load_clip(model, weights, device).freeze()
        if clip.image_size not in inputs:
            inputs[clip.image_size] = prepare_inputs(manifest, settings, clip.image_size)
        results[name] = evaluate(clip, manifest, settings, inputs[clip.image_size], name)
        stuff = results[name].get("stuff_test", {})
        log.info("%s: zero-shot mAP %.3f; stuff test objects %.3f, stuff %.3f", name, results[name]["zero_shot_map"],
                 stuff.get("object_accuracy", float("nan")), stuff.get("stuff_accuracy", float("nan")))
    write_json(json_path, results)
    write_text(tsv_path, to_tsv(results))
    return results
