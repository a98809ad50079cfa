"""Stage ``eval_cams``: how good are the CAMs as segmentations, on the pixel-labeled train split.

For background thresholds 0.05..0.95 (IRNet's rule, :func:`clims_core.metrics.segmentation.cams_to_label`): mIoU per
threshold (the curve), the best threshold, per-class IoU / precision / recall there and, where the dataset has stuff
masks, each ``eval.confounders`` pair's false-positive rate (the share of the visible stuff's pixels labelled as the
class: a train CAM firing on railroad). Every image is read once; all thresholds are counted in that one pass.
Writes JSON (machine), TSV (human) and a PNG of the curve.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clims_core.data.manifest import Manifest
from clims_core.data.voc import STUFF_DIR
from clims_core.io.atomic import atomic_path, write_json, write_text
from clims_core.io.cam_store import CamStore, check_cam_classes
from clims_core.metrics.results import (confounder_pairs, fraction, load_ground_truth, load_stuff_mask, percent,
                                        sum_over_images, tsv_cell)
from clims_core.metrics.segmentation import (DEFAULT_THRESHOLDS, SweepCounts, background_precision, foreground_precision,
                                             scores_from_confusion, sweep_image)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalCamsSettings:
    split: str = "train"  # the pixel-labeled train split
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    confounders: dict[str, str] = field(default_factory=dict)  # class -> stuff, from eval.confounders
    threads: int = 1
    allow_missing: bool = False  # evaluate the stored subset of the split (missing ids listed in the JSON)


class _ImageCounter:
    """Reads one image's CAMs and masks and counts it at every threshold (called from worker threads).

    h5py serialises its own calls behind one global lock, so threads share one store handle: the HDF5 read and gzip
    decompression run one at a time while PNG decoding and the numpy counting of other images overlap with them.
    """

    def __init__(self, manifest: Manifest, store: CamStore, settings: EvalCamsSettings, pairs: list[tuple[int, int]],
                 stuff_dir: Path | None):
        self.manifest, self.store, self.settings = manifest, store, settings
        self.pairs, self.stuff_dir = pairs, stuff_dir
        self.n_classes = len(manifest.classes) + 1

    def __call__(self, item: dict[str, Any]) -> SweepCounts:
        image_id = item["id"]
        gt = load_ground_truth(self.manifest, item, self.settings.split)
        keys, cams = self.store.read(image_id)
        if cams.shape[1:] != gt.shape:
            raise ValueError(f"{self.store.path}: image {image_id!r} has CAMs of {cams.shape[1]} x {cams.shape[2]} px, "
                             f"its mask {item['mask']} is {gt.shape[0]} x {gt.shape[1]}")
        check_cam_classes(self.store.path, image_id, keys, item["labels"], self.manifest.classes)
        stuff = None
        if self.stuff_dir is not None:
            stuff = load_stuff_mask(self.stuff_dir, image_id)
        pairs = self.pairs if stuff is not None else ()
        return sweep_image(cams, keys, gt, self.settings.thresholds, self.n_classes, stuff, pairs)


def evaluate(settings: EvalCamsSettings, manifest: Manifest, store: CamStore) -> tuple[SweepCounts, list[str], bool]:
    """Counts over the split's stored images, the split's ids missing from the store, and whether stuff was used."""
    if settings.split not in manifest.splits:
        raise ValueError(f"eval_cams: split {settings.split!r} is not in the manifest (splits: {list(manifest.splits)})")
    items = manifest.splits[settings.split]
    stored = set(store.ids())  # also opens the store here, before threads share it
    missing = [item["id"] for item in items if item["id"] not in stored]
    if missing and not settings.allow_missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise ValueError(f"{store.path}: {len(missing)} of {len(items)} images of split {settings.split} have no CAMs: {shown}")
    items = [item for item in items if item["id"] in stored]
    pairs = confounder_pairs(manifest, settings.confounders)
    stuff_dir = manifest.root / STUFF_DIR
    use_stuff = bool(pairs) and stuff_dir.is_dir()
    counter = _ImageCounter(manifest, store, settings, pairs, stuff_dir if use_stuff else None)
    total = SweepCounts(np.asarray(settings.thresholds), counter.n_classes, tuple(pairs) if use_stuff else ())
    return sum_over_images(counter, items, total, settings.threads, "eval_cams"), missing, use_stuff


def rising_at_edge(curve: list[float], best: int) -> bool:
    """Whether the best of a sweep is at one of its ends with the curve still rising there, so the true best may lie
    beyond the sweep (very broad or very narrow CAMs): eval.cam_thresholds should widen. A flat end (ties go to the
    lowest threshold) is not."""
    if len(curve) < 2 or best not in (0, len(curve) - 1):
        return False
    neighbour = curve[1] if best == 0 else curve[-2]
    return bool(np.isnan(neighbour) or curve[best] > neighbour)


def summarize(counts: SweepCounts, manifest: Manifest) -> dict[str, Any]:
    """The metrics of the JSON: the curve, the best threshold and everything measured at it."""
    scores = [scores_from_confusion(conf) for conf in counts.confusion]
    curve = [s["miou"] for s in scores]
    best = int(np.nanargmax(curve)) if not np.all(np.isnan(curve)) else 0  # ties: the lowest threshold
    at_best = scores[best]
    names = ["background", *manifest.classes]
    result: dict[str, Any] = {
        "thresholds": [round(float(t), 6) for t in counts.thresholds],
        "miou_per_threshold": [percent(m) for m in curve],
        "best_threshold": round(float(counts.thresholds[best]), 6),
        "miou": percent(curve[best]),
        "best_at_sweep_edge": rising_at_edge(curve, best),
        "per_class": {name: {key: percent(at_best[key][i]) for key in ("iou", "precision", "recall")}
                      for i, name in enumerate(names)},
        # How trustworthy each side of the plane is at each threshold: what refine's "auto" thresholds read.
        "background_precision_per_threshold": [fraction(p) for p in map(background_precision, counts.confusion)],
        "foreground_precision_per_threshold": [fraction(p) for p in map(foreground_precision, counts.confusion)],
    }
    if counts.pairs:
        keys = [f"{manifest.classes[c - 1]}/{manifest.stuff_classes[s - 1]}" for c, s in counts.pairs]
        rates = np.stack([counts.confounder_rates(t) for t in range(len(counts.thresholds))])
        result["confounder_fp"] = {key: {"rate": fraction(rates[best, p]), "pixels": int(counts.confounder_pixels[p])}
                                   for p, key in enumerate(keys)}
        result["confounder_fp_per_threshold"] = {key: [fraction(r) for r in rates[:, p]] for p, key in enumerate(keys)}
    return result


def to_tsv(result: dict[str, Any]) -> str:
    """One ``method  metric  value`` row per figure (percent for IoU/precision/recall/mIoU, a fraction for rates)."""
    method = result["method"]
    rows = [("images", result["images"]), ("best_threshold", result["best_threshold"]), ("miou", result["miou"])]
    rows += [(f"miou@{t:g}", m) for t, m in zip(result["thresholds"], result["miou_per_threshold"])]
    for name, scores in result["per_class"].items():
        rows += [(f"{key}.{name}", value) for key, value in scores.items()]
    for pair, entry in result.get("confounder_fp", {}).items():
        rows += [(f"confounder_fp.{pair}", entry["rate"]), (f"confounder_pixels.{pair}", entry["pixels"])]
    rows.append(("missing", len(result["missing"])))
    lines = ["method\tmetric\tvalue"]
    lines += [f"{method}\t{metric}\t{tsv_cell(value)}" for metric, value in rows]
    return "\n".join(lines) + "\n"


def plot_curve(result: dict[str, Any], path: str | Path) -> None:
    """mIoU against the background threshold, the best point marked; written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    curve = [np.nan if m is None else m for m in result["miou_per_threshold"]]
    axes.plot(result["thresholds"], curve, marker="o", markersize=3)
    if result["miou"] is not None:
        axes.plot([result["best_threshold"]], [result["miou"]], marker="*", markersize=14, color="tab:red",
                  label=f"best {result['miou']:.1f} at {result['best_threshold']:g}")
        axes.legend(loc="best")
    axes.set_xlabel("background threshold")
    axes.set_ylabel("mIoU (%)")
    axes.set_title(f"CAMs: {result['method']} on {result['split']} ({result['images']} images)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")


def run(settings: EvalCamsSettings, manifest_path: str | Path, store_path: str | Path, json_path: str | Path,
        tsv_path: str | Path, plot_path: str | Path, method: str) -> dict[str, Any]:
    """Evaluate one CAM store on ``settings.split``; write JSON, TSV and the curve; return the JSON's dict."""
    manifest = Manifest.load(manifest_path)
    with CamStore(store_path) as store:
        counts, missing, used_stuff = evaluate(settings, manifest, store)
        provenance = store.attrs
    images = len(manifest.splits[settings.split]) - len(missing)
    if images == 0:
        raise ValueError(f"{store_path}: no image of split {settings.split} is in the store")
    result = {"method": method, "split": settings.split, "images": images, "missing": missing,
              "store": {key: provenance[key] for key in ("config_hash", "checkpoint_sha256", "code_version")},
              **summarize(counts, manifest)}
    if settings.confounders and not used_stuff:
        result["confounder_fp_skipped"] = f"no {STUFF_DIR}/ folder in {manifest.root}"
        log.warning("eval_cams: eval.confounders is set but %s has no %s/; confounder rates not computed",
                    manifest.root, STUFF_DIR)
    log.info("eval_cams %s: mIoU %.2f at threshold %.2f over %d images", method, result["miou"] or float("nan"),
             result["best_threshold"], images)
    if result["best_at_sweep_edge"]:
        log.warning("eval_cams %s: the best threshold %g is at an end of eval.cam_thresholds (%g-%g) with the curve "
                    "still rising; the best may lie beyond it and refine's auto thresholds start from it: widen "
                    "eval.cam_thresholds", method, result["best_threshold"], result["thresholds"][0],
                    result["thresholds"][-1])
    write_json(json_path, result)
    write_text(tsv_path, to_tsv(result))
    plot_curve(result, plot_path)
    return result
