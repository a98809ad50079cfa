"""Stage ``seg_table``: the seed paper's Table 1 (supplementary A.2) for this run, as Markdown and TSV.

Rows: this run's CCT trainings (pixel-labeled subset alone with consistency on the image-level images, then with the
pseudo masks of each CAM method), and, marked as such, the published PASCAL VOC 2012 figures the paper reports: CCT
73.2 and CCT + CLIMS 76.9 val mIoU (75.8 on test) with 1.5K pixel-level and 9.1K image-level images. Published and
measured figures come from different data (VOC vs this run's dataset) and are never compared in one number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clims_core.io.atomic import write_text

PUBLISHED_SOURCE = "CLIMS (CVPR 2022), supplementary A.2, Table 1; PASCAL VOC 2012"
# (method, pixel-level, image-level, val mIoU, note)
PUBLISHED = (
    ("CCT", "1.5K", "9.1K", 73.2, "published (VOC 2012 val)"),
    ("CCT + CLIMS", "1.5K", "9.1K", 76.9, "published (VOC 2012 val; 75.8 on test)"),
)


@dataclass(frozen=True)
class TableRow:
    run: str
    method: str  # as shown, e.g. "CCT + CLIMS pseudo masks"
    pixel_level: int
    image_level: int
    miou: float | None
    note: str


def method_label(run: str, pseudo_method: str | None) -> str:
    """``cct_labeled`` -> "CCT (no pseudo masks)", ``cct_weak_clims`` -> "CCT + CLIMS pseudo masks"."""
    if pseudo_method is None:
        return "CCT (no pseudo masks)"
    names = {"cam": "CAM", "clims": "CLIMS", "puzzlecam": "PuzzleCAM"}
    return f"CCT + {names.get(pseudo_method, pseudo_method)} pseudo masks"


def row_from_eval(run: str, pseudo_method: str | None, result: dict[str, Any]) -> TableRow:
    for key in ("miou", "pixel_labeled", "image_labeled", "split"):
        if key not in result:
            raise ValueError(f"eval_seg result of {run} lacks {key!r} (rerun eval_seg)")
    usage = "images only (consistency)" if pseudo_method is None else f"images + {pseudo_method} pseudo masks"
    return TableRow(run, method_label(run, pseudo_method), int(result["pixel_labeled"]), int(result["image_labeled"]),
                    result["miou"], f"this run ({result['split']}, {result['images']} images); image-level: {usage}")


def _miou(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def to_markdown(rows: list[TableRow]) -> str:
    lines = ["# Table 1: CCT with pseudo masks (semi-supervised segmentation)", "",
             "| method | pixel-level | image-level | val mIoU | source |", "|---|---|---|---|---|"]
    lines += [f"| {r.method} | {r.pixel_level:,} | {r.image_level:,} | {_miou(r.miou)} | {r.note} |" for r in rows]
    lines += [f"| {m} | {p} | {i} | {v:.1f} | {note} |" for m, p, i, v, note in PUBLISHED]
    lines += ["", f"Published rows: {PUBLISHED_SOURCE}. They are the paper's figures on VOC, not results of this run, "
              "whose dataset and scale differ; compare rows of the same source only."]
    return "\n".join(lines) + "\n"


def to_tsv(rows: list[TableRow]) -> str:
    lines = ["method\trun\tpixel_level\timage_level\tval_miou\tsource"]
    lines += [f"{r.method}\t{r.run}\t{r.pixel_level}\t{r.image_level}\t{_miou(r.miou)}\tthis run" for r in rows]
    lines += [f"{m}\t\t{p}\t{i}\t{v:.1f}\tpublished VOC 2012 ({PUBLISHED_SOURCE})" for m, p, i, v, _ in PUBLISHED]
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
