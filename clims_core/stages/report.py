"""Stage ``report``: ``results/report/index.html``, what a user looks at after a run.

Every table and plot comes from summary.json; the side-by-side mask figures (seed Figures 1 and 2) read the CAM stores
of the pixel-labeled train split (:mod:`clims_core.report.figures`). The page embeds its PNGs, and the same PNGs are
written to a folder beside it (for ``snakemake --report`` and for reuse). Sections of stages that did not run are left
out.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clims_core.data.manifest import Manifest
from clims_core.io.atomic import atomic_directory, write_text
from clims_core.io.cam_store import CamStore
from clims_core.report import html, plots
from clims_core.report.figures import ClassFigure, class_figure, seg_examples_figure
from clims_core.report.names import method_name
from clims_core.report.seg_runs import PUBLISHED_ROWS, PublishedRow, seg_run_order

log = logging.getLogger(__name__)

CLIMS = "clims"


@dataclass(frozen=True)
class ReportSettings:
    figure_classes: tuple[str, ...] = ()  # empty: the classes of ``confounders``, else the first three classes
    figure_rows: int = 3  # largest-gain rows per class (the median-gain row comes on top)
    figure_baseline: str | None = None  # None: puzzlecam when it ran, else cam
    confounders: dict[str, str] = field(default_factory=dict)  # class -> stuff (eval.confounders)
    split: str = "train"  # the pixel-labeled split the CAM stores cover
    published: tuple[PublishedRow, ...] = PUBLISHED_ROWS


# summary.json is written with sorted keys; the report lists methods and rules in the order the pipeline runs them.
METHOD_ORDER = ("cam", "puzzlecam", "clims")
RULE_ORDER = ("make_demo_world", "prepare_data", "pretrain_clip", "finetune_clip", "eval_clip", "train_cam",
              "make_cams", "merge_cams", "eval_cams", "cam_to_ir_label", "train_irn", "make_pseudo_masks", "crf_masks",
              "eval_masks", "train_seg", "eval_seg", "summary", "report")


def _rank(name: str, order: tuple[str, ...]) -> tuple[int, str]:
    head = name.partition("/")[0]
    ranks = [i for i, prefix in enumerate(order) if head == prefix or head.startswith(prefix + "_")]
    return (ranks[-1] if ranks else len(order), name)


def in_pipeline_order(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with CAM methods (also as ``method/refiner``) and rule timings in pipeline order."""
    summary = dict(summary)
    if "clip" in summary:
        summary["clip"] = {k: summary["clip"][k] for k in sorted(summary["clip"], key=lambda k: (k != "pretrained", k))}
    for key in ("cams", "masks"):
        if key in summary:
            summary[key] = {k: summary[key][k] for k in sorted(summary[key], key=lambda k: _rank(k, METHOD_ORDER))}
    if "seg" in summary:  # Table 1 order: CCT's pixel-labeled-only run, its runs per CAM method, then DeepLab's
        summary["seg"] = {k: summary["seg"][k] for k in sorted(summary["seg"],
                                                              key=lambda k: seg_run_order(k, METHOD_ORDER))}
    if "timings_s" in summary:
        summary["timings_s"] = {k: summary["timings_s"][k] for k in sorted(summary["timings_s"],
                                                                          key=lambda k: _rank(k, RULE_ORDER))}
    return summary


def resolve_baseline(settings: ReportSettings, methods: list[str]) -> str | None:
    """The method CLIMS is compared with in the figures (the seed's figures use PuzzleCAM, else the plain CAM)."""
    if settings.figure_baseline is not None:
        if settings.figure_baseline not in methods or settings.figure_baseline == CLIMS:
            raise ValueError(f"report.figure_baseline: {settings.figure_baseline!r} is not a CAM method of this run "
                             f"other than clims (methods: {methods})")
        return settings.figure_baseline
    return next((m for m in ("puzzlecam", "cam") if m in methods), None)


def figure_classes(settings: ReportSettings, manifest: Manifest) -> list[str]:
    classes = list(settings.figure_classes) or list(settings.confounders) or manifest.classes[:3]
    unknown = [c for c in classes if c not in manifest.classes]
    if unknown:
        raise ValueError(f"report.figure_classes: {unknown} not in the dataset's classes {manifest.classes}")
    return classes


def dataset_rows(manifest: Manifest, provenance: Mapping[str, Any]) -> dict[str, str]:
    rows = {"dataset folder": str(manifest.root)}
    dataset = provenance.get("dataset", {})
    for key, value in dataset.items():
        if value is not None and key != "root":
            rows[key.replace("_", " ")] = str(value)
    rows["images per split"] = ", ".join(f"{split} {len(items):,}" for split, items in manifest.splits.items())
    rows["classes"] = ", ".join(manifest.classes)
    if manifest.stuff_classes:
        rows["stuff"] = ", ".join(manifest.stuff_classes)
    if manifest.skipped:
        rows["skipped inputs"] = str(len(manifest.skipped))
    return rows


def figure_mask_dirs(mask_dirs: Mapping[str, str | Path], baseline: str) -> dict[str, Path]:
    """Pseudo-mask columns: the baseline's and CLIMS's masks, one refiner each (IRN when it ran, else the first)."""
    chosen = {}
    for method in (baseline, CLIMS):
        keys = sorted((k for k in mask_dirs if k.partition("/")[0] == method),
                      key=lambda k: (not k.endswith("/irn"), k))
        if keys:
            chosen[keys[0]] = Path(mask_dirs[keys[0]])
    return chosen


def make_figures(settings: ReportSettings, manifest: Manifest, cams: Mapping[str, Any],
                 cam_stores: Mapping[str, str | Path], baseline: str,
                 mask_dirs: Mapping[str, str | Path] | None = None) -> list[ClassFigure]:
    """One figure per class: columns for every baseline method with a store, CLIMS, then pseudo masks."""
    methods = [m for m in cams if m != CLIMS and m in cam_stores] + [CLIMS]
    thresholds = {m: float(cams[m]["best_threshold"]) for m in methods}
    masks = figure_mask_dirs(mask_dirs or {}, baseline)
    with contextlib.ExitStack() as stack:
        stores = {m: stack.enter_context(CamStore(cam_stores[m])) for m in methods}
        return [class_figure(manifest, settings.split, cls, settings.confounders.get(cls), stores, thresholds, CLIMS,
                             baseline, settings.figure_rows, masks) for cls in figure_classes(settings, manifest)]


def build(settings: ReportSettings, summary: Mapping[str, Any], manifest: Manifest,
          cam_stores: Mapping[str, str | Path], mask_dirs: Mapping[str, str | Path] | None = None,
          seg_examples: Mapping[str, str | Path] | None = None) -> tuple[str, list[html.Picture]]:
    """The page and its pictures."""
    pictures: list[html.Picture] = []
    sections: dict[str, str] = {}
    cams = summary.get("cams", {})
    baseline = resolve_baseline(settings, list(cams))
    sections["glance"] = html.glance_section(summary)
    if summary.get("trunk"):
        sections["trunk"] = html.trunk_section(summary["trunk"])
    if "clip" in summary:
        sections["clip"] = html.clip_section(summary["clip"])
    if cams:
        curves = bars = None
        if all("curve" in entry for entry in cams.values()):
            curves = html.Picture("cam_threshold_curves", plots.threshold_curves(cams), "CAM mIoU against threshold",
                                  "mIoU against the background threshold; stars mark each method's best.")
        bars = html.Picture("cam_per_class_iou", plots.grouped_bars({m: e["per_class"] for m, e in cams.items()},
                                                                    "IoU (%)"),
                            "CAM IoU per class", "IoU per class at each method's best threshold.")
        pictures += [p for p in (curves, bars) if p]
        sections["cams"] = html.cams_section(cams, curves, bars)
        if CLIMS in cams and baseline and CLIMS in cam_stores and baseline in cam_stores:
            figures = make_figures(settings, manifest, cams, cam_stores, baseline, mask_dirs)
            shown = {}
            for figure in figures:
                if figure.png is not None:
                    caption = (f"{figure.eligible} eligible images; mean per-image {figure.class_name} IoU gain of "
                               f"CLIMS over {method_name(baseline)} {figure.mean_gain:+.1f} points.")
                    shown[f"figure_{figure.class_name}"] = html.Picture(
                        f"figure_{figure.class_name}", figure.png, f"{figure.class_name}: masks side by side", caption)
                log.info("report: figure %s, %d eligible images, rows %s", figure.class_name, figure.eligible,
                         [row.candidate.image_id for row in figure.rows])
            pictures += shown.values()
            sections["figures"] = html.figures_section(figures, shown, CLIMS, baseline, settings.figure_rows)
    if summary.get("masks"):
        masks = summary["masks"]
        bars = html.Picture("masks_per_class_iou", plots.grouped_bars({k: e["per_class"] for k, e in masks.items()},
                                                                      "IoU (%)"),
                            "Pseudo-mask IoU per class", "Pseudo-mask IoU per class.")
        pictures.append(bars)
        sections["masks"] = html.masks_section(masks, bars)
    if summary.get("seg"):
        examples = None
        shown_runs = {run: path for run, path in (seg_examples or {}).items() if run in summary["seg"]}
        png = seg_examples_figure(manifest, "val", shown_runs)
        if png is not None:
            examples = html.Picture("seg_val_examples", png, "Segmented val images",
                                    "The first val images as each segmentation run predicts them (eval_seg's "
                                    "settings), beside the ground truth.")
            pictures.append(examples)
        sections["seg"] = html.seg_section(summary["seg"], settings.published, examples)
    provenance = summary.get("provenance", {})
    sections["provenance"] = html.provenance_section(provenance, summary.get("timings_s", {}),
                                                     dataset_rows(manifest, provenance))
    subtitle = (f"code {html.escape(provenance.get('code_version', 'unknown'))} &middot; dataset "
                f"{html.escape(manifest.root)} &middot; {len(manifest.classes)} classes")
    return html.page(sections, subtitle), pictures


def run(settings: ReportSettings, summary_path: str | Path, manifest_path: str | Path,
        cam_stores: Mapping[str, str | Path], html_path: str | Path, figures_dir: str | Path,
        mask_dirs: Mapping[str, str | Path] | None = None,
        seg_examples: Mapping[str, str | Path] | None = None) -> list[str]:
    """Write the page and its pictures' folder; return the ids of the sections present.

    ``mask_dirs`` maps ``"<cam method>/<refiner>"`` to a pseudo-mask folder (``masks/<id>.png``): the figures show the
    baseline's and CLIMS's pseudo masks beside their CAMs.
    """
    if settings.figure_rows < 1:
        raise ValueError(f"report.figure_rows: expected at least 1, got {settings.figure_rows}")
    summary = in_pipeline_order(json.loads(Path(summary_path).read_text(encoding="utf-8")))
    manifest = Manifest.load(manifest_path)
    missing = [str(p) for p in cam_stores.values() if not Path(p).is_file()]
    missing += [str(Path(p) / "masks") for p in (mask_dirs or {}).values() if not (Path(p) / "masks").is_dir()]
    if missing:
        raise FileNotFoundError(f"report: CAM stores or pseudo-mask folders missing: {missing}")
    figure_classes(settings, manifest)  # bad settings stop here, before any picture is drawn
    resolve_baseline(settings, list(summary.get("cams", {})))
    document, pictures = build(settings, summary, manifest, cam_stores, mask_dirs, seg_examples)
    with atomic_directory(figures_dir) as folder:
        for pic in pictures:
            (folder / f"{pic.name}.png").write_bytes(pic.png)
    write_text(html_path, document)
    sections = [s for s in html.TITLES if f'<section id="{s}">' in document]
    log.info("report: %s (%d pictures, sections %s)", html_path, len(pictures), sections)
    return sections
