"""``results/report/summary.json``: the headline figures of a run, gathered from each stage's metrics JSON.

Shape (DESIGN.md): ``{"clip": {...}, "cams": {...}, "masks": {...}, "seg": {...}, "timings_s": {"<rule>": s}}``;
sections of stages that did not run are absent, not empty.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from clims_core.io.atomic import write_json


def read_benchmark_seconds(path: str | Path) -> float:
    """Wall seconds of a Snakemake ``benchmark:`` TSV (mean over its repeats)."""
    with open(path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or "s" not in rows[0]:
        raise ValueError(f"{path}: not a Snakemake benchmark TSV (expected a column 's')")
    return sum(float(row["s"]) for row in rows) / len(rows)


def clip_section(clip_eval: dict[str, Any]) -> dict[str, Any]:
    """Per CLIP (pretrained / finetuned): zero-shot mAP in percent and the stuff-test accuracies in percent."""
    section = {}
    for name, result in clip_eval.items():
        entry = {"zero_shot_map": 100 * result["zero_shot_map"]}
        if "stuff_test" in result:
            entry["stuff_test_object_accuracy"] = 100 * result["stuff_test"]["object_accuracy"]
            entry["stuff_test_stuff_accuracy"] = 100 * result["stuff_test"]["stuff_accuracy"]
        section[name] = entry
    return section


def cam_entry(result: dict[str, Any]) -> dict[str, Any]:
    """One CAM method's headline figures (percent): mIoU at the best threshold, per-class IoU, confounder FP rates."""
    entry = {"miou": result["miou"], "best_threshold": result["best_threshold"],
             "per_class": {name: scores["iou"] for name, scores in result["per_class"].items()}}
    if "confounder_fp" in result:
        entry["confounder_fp"] = {pair: None if v["rate"] is None else 100 * v["rate"]
                                  for pair, v in result["confounder_fp"].items()}
    return entry


def _read(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def build_summary(clip_eval: str | Path | None = None, cam_evals: dict[str, str | Path] | None = None,
                  benchmarks: dict[str, str | Path] | None = None) -> dict:
    summary: dict[str, Any] = {}
    if clip_eval:
        summary["clip"] = clip_section(_read(clip_eval))
    if cam_evals:
        summary["cams"] = {method: cam_entry(_read(path)) for method, path in cam_evals.items()}
    if benchmarks:
        summary["timings_s"] = {rule: round(read_benchmark_seconds(path), 2) for rule, path in sorted(benchmarks.items())}
    return summary


def write_summary(path: str | Path, **inputs: Any) -> dict:
    summary = build_summary(**inputs)
    write_json(path, summary)
    return summary
