"""Side-by-side mask figures like the seed paper's Figures 1 and 2: image | ground truth | baseline mask(s) | CLIMS.

Each method's CAMs become a label map at that method's best background threshold (IRNet's rule,
:func:`clims_core.metrics.segmentation.cams_to_label`), drawn as VOC-coloured overlays.

Which images are shown is a fixed rule, never a hand pick: among the images of the split that are labelled with the
class, in every CAM store, and (when the dataset has stuff masks and the class has a confounder) show its stuff on at
least ``STUFF_MIN_SHARE`` of their pixels, rank by the per-image IoU gain of CLIMS over the baseline for that class
(ties: image id), take the ``rows`` largest gains and add the image at the median gain, so that one row shows a
typical case and not only the best ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from tqdm import tqdm

from clims_core.data.manifest import Manifest
from clims_core.data.voc import STUFF_DIR
from clims_core.io.cam_store import CamStore
from clims_core.io.images import read_rgb
from clims_core.io.masks import IGNORE_INDEX, load_mask, overlay, voc_colormap
from clims_core.metrics.segmentation import cams_to_label
from clims_core.report.names import method_name
from clims_core.report.plots import to_png

STUFF_MIN_SHARE = 0.05  # the stuff counts as shown when it covers 5% of the image (visible, ground truth background)
OVERLAY_ALPHA = 0.55


@dataclass(frozen=True)
class Candidate:
    """An eligible image: the class's IoU (percent) under each method, and CLIMS's gain over the baseline."""

    image_id: str
    ious: dict[str, float]
    gain: float
    stuff_share: float | None = None  # share of the image where the class's stuff is visible


@dataclass(frozen=True)
class FigureRow:
    candidate: Candidate
    reason: str  # "largest gain 1", "median gain"


@dataclass
class ClassFigure:
    """One class's figure (PNG bytes) and how its rows were chosen; ``png`` is None when no image was eligible."""

    class_name: str
    stuff: str | None
    eligible: int
    rows: list[FigureRow] = field(default_factory=list)
    mean_gain: float | None = None
    png: bytes | None = None


def class_iou(pred: np.ndarray, gt: np.ndarray, class_id: int) -> float:
    """IoU (percent) of one class between two label maps, over the pixels whose ground truth is not ignored."""
    valid = gt != IGNORE_INDEX
    p, g = (pred == class_id) & valid, (gt == class_id) & valid
    union = int((p | g).sum())
    return 100.0 * int((p & g).sum()) / union if union else float("nan")


def label_map(store: CamStore, image_id: str, threshold: float) -> np.ndarray:
    keys, cams = store.read(image_id)
    return cams_to_label(cams, keys, threshold)


def _stuff_map(manifest: Manifest, image_id: str) -> np.ndarray | None:
    path = manifest.root / STUFF_DIR / f"{image_id}.png"
    return load_mask(path) if path.is_file() else None


def find_candidates(manifest: Manifest, split: str, class_name: str, stuff: str | None, stores: Mapping[str, CamStore],
                    thresholds: Mapping[str, float], method: str, baseline: str) -> list[Candidate]:
    """Every eligible image of the split for one class (see the module docstring), in split order."""
    class_id = manifest.classes.index(class_name) + 1
    stuff_id = manifest.stuff_classes.index(stuff) + 1 if stuff else None
    use_stuff = stuff_id is not None and (manifest.root / STUFF_DIR).is_dir()
    stored = [set(store.ids()) for store in stores.values()]
    items = [item for item in manifest.splits[split]
             if item["labels"][class_id - 1] and item.get("mask") and all(item["id"] in ids for ids in stored)]
    candidates = []
    for item in tqdm(items, desc=f"report figure {class_name}", unit="img", mininterval=2.0):
        gt = load_mask(manifest.root / item["mask"])
        share = None
        if use_stuff:
            stuff_map = _stuff_map(manifest, item["id"])
            share = float(((stuff_map == stuff_id) & (gt == 0)).mean()) if stuff_map is not None else 0.0
            if share < STUFF_MIN_SHARE:
                continue
        ious = {name: class_iou(label_map(store, item["id"], thresholds[name]), gt, class_id)
                for name, store in stores.items()}
        if np.isnan(ious[method]) or np.isnan(ious[baseline]):
            continue
        candidates.append(Candidate(item["id"], ious, ious[method] - ious[baseline], share))
    return candidates


def choose_rows(candidates: Sequence[Candidate], rows: int) -> list[FigureRow]:
    """The ``rows`` largest gains (ties by image id), then the median-gain image if it is not among them."""
    ranked = sorted(candidates, key=lambda c: (-c.gain, c.image_id))
    chosen = [FigureRow(c, f"largest gain {i + 1}") for i, c in enumerate(ranked[:rows])]
    if ranked:
        median = ranked[len(ranked) // 2]
        if all(row.candidate.image_id != median.image_id for row in chosen):
            chosen.append(FigureRow(median, "median gain"))
    return chosen


def _draw_row(axes_row: Sequence[Any], panels: Sequence[tuple[np.ndarray, str | None]], titles: Sequence[str] | None,
              title_size: int) -> None:
    """One figure row: each panel's pixels without ticks, its label below when given, column titles on the first."""
    for c, (pixels, label) in enumerate(panels):
        axes = axes_row[c]
        axes.imshow(pixels, interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        if titles is not None:
            axes.set_title(titles[c], fontsize=title_size)
        if label is not None:
            axes.set_xlabel(label, fontsize=8)


def _with_legend(figure: Figure, labels: set[int], names: list[str], height: float) -> bytes:
    """The figure's PNG with a legend of the VOC colours of ``labels`` (ignore too) along its bottom."""
    colours = voc_colormap() / 255.0
    handles = [Patch(color=colours[k], label=names[k]) for k in sorted(labels) if 0 < k < len(names)]
    if IGNORE_INDEX in labels:
        handles.append(Patch(color=colours[IGNORE_INDEX], label="ignore"))
    figure.legend(handles=handles, loc="lower center", ncol=max(1, min(len(handles), 8)), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.6 / height, 1, 1))
    return to_png(figure)


def render(manifest: Manifest, split: str, class_name: str, stuff: str | None, rows: Sequence[FigureRow],
           stores: Mapping[str, CamStore], thresholds: Mapping[str, float],
           mask_dirs: Mapping[str, Path] | None = None) -> bytes:
    """The figure: one row per chosen image, columns image | ground truth | one overlay per CAM method (store order)
    | one per pseudo-mask folder (``"method/refiner"`` -> folder holding ``masks/<id>.png``)."""
    class_id = manifest.classes.index(class_name) + 1
    names = ["background", *manifest.classes]
    mask_dirs = dict(mask_dirs or {})
    columns = ["image", "ground truth", *(f"{method_name(m)} (thr. {thresholds[m]:g})" for m in stores),
               *(method_name(key) for key in mask_dirs)]
    figure = Figure(figsize=(2.0 * len(columns), 2.15 * len(rows) + 0.7), dpi=100)
    grid = figure.subplots(len(rows), len(columns), squeeze=False)
    shown_labels: set[int] = set()
    for r, row in enumerate(rows):
        image_id = row.candidate.image_id
        image = read_rgb(manifest.image_path(image_id))
        gt = load_mask(manifest.mask_path(split, image_id))
        panels = [(image, None), (overlay(image, gt, OVERLAY_ALPHA), None)]
        for method, store in stores.items():
            pred = label_map(store, image_id, thresholds[method])
            panels.append((overlay(image, pred, OVERLAY_ALPHA), row.candidate.ious[method]))
            shown_labels.update(np.unique(pred).tolist())
        for folder in mask_dirs.values():
            path = Path(folder) / "masks" / f"{image_id}.png"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: pseudo mask missing (expected for every {split} image)")
            pred = load_mask(path)
            panels.append((overlay(image, pred, OVERLAY_ALPHA), class_iou(pred, gt, class_id)))
            shown_labels.update(np.unique(pred).tolist())
        shown_labels.update(np.unique(gt).tolist())
        _draw_row(grid[r], [(pixels, None if iou is None else f"{class_name} IoU {iou:.0f}%")
                            for pixels, iou in panels], columns if r == 0 else None, 9)
        label = f"{image_id}\n{row.reason} ({row.candidate.gain:+.0f})"
        if row.candidate.stuff_share is not None:
            label += f"\n{stuff} {row.candidate.stuff_share:.0%}"
        grid[r, 0].set_ylabel(label, fontsize=8)
    return _with_legend(figure, shown_labels, names, 2.15 * len(rows) + 0.7)


def class_figure(manifest: Manifest, split: str, class_name: str, stuff: str | None, stores: Mapping[str, CamStore],
                 thresholds: Mapping[str, float], method: str, baseline: str, rows: int,
                 mask_dirs: Mapping[str, Path] | None = None) -> ClassFigure:
    """Choose the rows for one class by the fixed rule (on the CAMs) and draw them, pseudo masks beside."""
    candidates = find_candidates(manifest, split, class_name, stuff, stores, thresholds, method, baseline)
    result = ClassFigure(class_name, stuff, eligible=len(candidates))
    if candidates:
        result.mean_gain = float(np.mean([c.gain for c in candidates]))
        result.rows = choose_rows(candidates, rows)
        result.png = render(manifest, split, class_name, stuff, result.rows, stores, thresholds, mask_dirs)
    return result


def seg_examples_figure(manifest: Manifest, split: str, examples: Mapping[str, Path]) -> bytes | None:
    """Segmented images beside their ground truth: one row per image that every run's folder holds
    (``<id>.png``, eval_seg's first images of the split), columns image | ground truth | one per run."""
    runs = {run: Path(folder) for run, folder in examples.items() if Path(folder).is_dir()}
    if not runs:
        return None
    ids = [i for i in manifest.ids(split) if all((folder / f"{i}.png").is_file() for folder in runs.values())]
    if not ids:
        return None
    names = ["background", *manifest.classes]
    columns = ["image", "ground truth", *runs]
    figure = Figure(figsize=(2.0 * len(columns), 2.1 * len(ids) + 0.7), dpi=100)
    grid = figure.subplots(len(ids), len(columns), squeeze=False)
    shown: set[int] = set()
    for r, image_id in enumerate(ids):
        image = read_rgb(manifest.image_path(image_id))
        gt = load_mask(manifest.mask_path(split, image_id))
        panels = [image, overlay(image, gt, OVERLAY_ALPHA)]
        for folder in runs.values():
            prediction = load_mask(folder / f"{image_id}.png")
            panels.append(overlay(image, prediction, OVERLAY_ALPHA))
            shown.update(np.unique(prediction).tolist())
        shown.update(np.unique(gt).tolist())
        _draw_row(grid[r], [(pixels, None) for pixels in panels], columns if r == 0 else None, 8)
        grid[r, 0].set_ylabel(image_id, fontsize=8)
    return _with_legend(figure, shown, names, 2.1 * len(ids) + 0.7)
