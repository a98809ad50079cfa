"""Stage ``seg_table``: the seed paper's Table 1 (supplementary A.2) for this run, as Markdown and TSV.

Rows: this run's CCT trainings (pixel-labeled subset alone with consistency on the image-level images, then with the
pseudo masks of each CAM method), its DeepLabV2 trainings on each CAM method's pseudo masks alone, and, marked as such,
the published PASCAL VOC 2012 figures (:data:`~clims_core.report.seg_runs.PUBLISHED_ROWS`): CCT 73.2 and CCT + CLIMS
76.9 val mIoU with 1.5K pixel-level and 9.1K image-level images; DeepLabV2 on CLIMS's masks 69.3. Published and
measured figures come from different data (VOC vs this run's dataset) and are never compared in one number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clims_core.io.atomic import write_text
from clims_core.report.seg_runs import PUBLISHED_ROWS, network_label


@dataclass(frozen=True)
class TableRow:
    run: str
    method: str  # as shown, e.g. "CCT + CLIMS pseudo masks"
    pixel_level: int
    image_level: int
    miou: float | None
    note: str


def row_from_eval(run: str, pseudo_method: str | None, result: dict[str, Any]) -> TableRow:
    for key in ("miou", "pixel_labeled", "image_labeled", "split"):
        if key not in result:
            raise ValueError(f"eval_seg result of {run} lacks {key!r} (rerun eval_seg)")
    if pseudo_method is None:
        usage = "images only (consistency)"
    elif result.get("method") == "deeplab":
        usage = f"{pseudo_method} pseudo masks alone"
    else:
        usage = f"images + {pseudo_method} pseudo masks"
    label = network_label(result.get("method", "cct"), pseudo_method)
    return TableRow(run, label, int(result["pixel_labeled"]), int(result["image_labeled"]), result["miou"],
                    f"this run ({result['split']}, {result['images']} images); image-level: {usage}")


def _miou(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def to_markdown(rows: list[TableRow]) -> str:
    lines = ["# Table 1: segmentation networks on pseudo masks (CCT semi-supervised, DeepLabV2 weakly supervised)", "",
             "| method | pixel-level | image-level | val mIoU | source |", "|---|---|---|---|---|"]
    lines += [f"| {r.method} | {r.pixel_level:,} | {r.image_level:,} | {_miou(r.miou)} | {r.note} |" for r in rows]
    lines += [f"| {p.method} | {p.pixel_level} | {p.image_level} | {p.val_miou:.1f} | published: {p.note} |"
              for p in PUBLISHED_ROWS]
    lines += ["", "Published rows are the papers' figures on PASCAL VOC 2012, not results of this run, whose dataset "
              "and scale differ; compare rows of the same source only."]
    return "\n".join(lines) + "\n"


def to_tsv(rows: list[TableRow]) -> str:
    lines = ["method\trun\tpixel_level\timage_level\tval_miou\tsource"]
    lines += [f"{r.method}\t{r.run}\t{r.pixel_level}\t{r.image_level}\t{_miou(r.miou)}\tthis run" for r in rows]
    lines += [f"{p.method}\t\t{p.pixel_level}\t{p.image_level}\t{p.val_miou:.1f}\tpublished: {p.note}"
              for p in PUBLISHED_ROWS]
    return "\n".join(lines) + "\n"


def run(runs: dict[str, str | None], eval_paths: dict[str, str | Path], markdown_path: str | Path,
        tsv_path: str | Path) -> list[TableRow]:
    """``runs``: run name -> CAM method of its pseudo masks (None for no pseudo masks), in table order;
    ``eval_paths``: run name -> its eval_seg JSON."""
    missing = [name for name in runs if name not in eval_paths]
    if missing:
        raise ValueError(f"seg_table: no eval_seg result for runs {missing}")
    rows = []
    for name, pseudo_method in runs.items():
        path = Path(eval_paths[name])
        rows.append(row_from_eval(name, pseudo_method, json.loads(path.read_text(encoding="utf-8"))))
    write_text(markdown_path, to_markdown(rows))
    write_text(tsv_path, to_tsv(rows))
    return rows
