"""``results/report/summary.json``: the headline figures of a run, gathered from each stage's metrics JSON.

Shape (DESIGN.md): ``{"clip": {...}, "cams": {...}, "masks": {...}, "seg": {...}, "timings_s": {"<rule>": s},
"provenance": {...}}``; sections of stages that did not run are absent, not empty. Every figure is in percent
(0..100). The summary holds everything the report's tables and plots show, so the report can be rebuilt from it alone
(the mask figures aside, which read the CAM stores).
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


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def clip_section(clip_eval: dict[str, Any]) -> dict[str, Any]:
    """Per CLIP (pretrained / finetuned): zero-shot mAP and AP per class, the stuff-test accuracies (percent)."""
    section = {}
    for name, result in clip_eval.items():
        entry: dict[str, Any] = {"zero_shot_map": 100 * result["zero_shot_map"]}
        if "zero_shot_ap" in result:
            entry["zero_shot_ap"] = {cls: _percent(ap) for cls, ap in result["zero_shot_ap"].items()}
        if "stuff_test" in result:
            test = result["stuff_test"]
            entry["stuff_test_object_accuracy"] = 100 * test["object_accuracy"]
            entry["stuff_test_stuff_accuracy"] = 100 * test["stuff_accuracy"]
            if "per_word" in test:
                entry["stuff_test_per_word"] = {word: _percent(acc) for word, acc in test["per_word"].items()}
            if "crops" in test:
                entry["stuff_test_crops"] = {kind: count for kind, count in test["crops"].items()
                                             if kind in ("object", "stuff")}
        section[name] = entry
    return section


def trunk_section(metrics: dict[str, Any]) -> dict[str, Any]:
    """pretrain_trunk's metrics (already in percent): held-out word mAP and AP per word, before and after."""
    return {"heldout_map": {k: round(v, 2) for k, v in metrics["heldout_map"].items()},
            "heldout_ap_per_word": {k: {w: round(ap, 2) for w, ap in per_word.items()}
                                    for k, per_word in metrics["heldout_ap_per_word"].items()},
            "epochs": len(metrics["loss_per_epoch"]), "pairs": metrics.get("pairs")}


def metric_entry(result: dict[str, Any]) -> dict[str, Any]:
    """mIoU, per-class IoU and confounder false-positive rates (percent) of a CAM or pseudo-mask evaluation JSON.

    Both evaluators write ``per_class: {name: {iou, precision, recall}}`` in percent and ``confounder_fp:
    {"cls/stuff": {rate}}`` as fractions; ``recall`` per class is kept too (it shows partial activation).
    """
    entry: dict[str, Any] = {"miou": result["miou"],
                             "per_class": {name: scores["iou"] for name, scores in result["per_class"].items()}}
    recall = {name: scores["recall"] for name, scores in result["per_class"].items() if "recall" in scores}
    if recall:
        entry["per_class_recall"] = recall
    if "best_threshold" in result:
        entry["best_threshold"] = result["best_threshold"]
    if "confounder_fp" in result:
        entry["confounder_fp"] = {pair: _percent(v["rate"]) for pair, v in result["confounder_fp"].items()}
    if "images" in result:
        entry["images"] = result["images"]
    return entry


def cam_entry(result: dict[str, Any]) -> dict[str, Any]:
    """One CAM method's headline figures (percent), with its mIoU-against-threshold curve."""
    entry = metric_entry(result)
    if "thresholds" in result and "miou_per_threshold" in result:
        entry["curve"] = {"thresholds": result["thresholds"], "miou": result["miou_per_threshold"]}
    return entry


def seg_entry(result: dict[str, Any]) -> dict[str, Any]:
    """One segmentation run (eval_seg JSON): val mIoU, per-class IoU, how many images of each supervision it used."""
    entry: dict[str, Any] = {"miou": result["miou"],
                             "per_class": {name: scores["iou"] for name, scores in result.get("per_class", {}).items()}}
    for key in ("pixel_labeled", "image_labeled", "split", "images"):
        if key in result:
            entry[key] = result[key]
    return entry


def _read(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a metrics JSON file ({error})") from None


def _section(paths: dict[str, str | Path], make: Any, kind: str) -> dict[str, Any]:
    section = {}
    for name, path in paths.items():
        try:
            section[name] = make(_read(path))
        except KeyError as error:
            raise ValueError(f"{path}: {kind} metrics without the key {error} (expected an {kind} JSON)") from None
    return section


def build_summary(clip_eval: str | Path | None = None, cam_evals: dict[str, str | Path] | None = None,
                  benchmarks: dict[str, str | Path] | None = None, mask_evals: dict[str, str | Path] | None = None,
                  seg_evals: dict[str, str | Path] | None = None, provenance: dict[str, Any] | None = None,
                  trunk_metrics: str | Path | None = None) -> dict:
    """The summary of whatever ran: each argument left empty leaves its section out."""
    summary: dict[str, Any] = {}
    if trunk_metrics:
        summary["trunk"] = trunk_section(_read(trunk_metrics))
    if clip_eval:
        summary["clip"] = clip_section(_read(clip_eval))
    if cam_evals:
        summary["cams"] = _section(cam_evals, cam_entry, "eval_cams")
    if mask_evals:
        summary["masks"] = _section(mask_evals, metric_entry, "eval_masks")
    if seg_evals:
        summary["seg"] = _section(seg_evals, seg_entry, "eval_seg")
    if benchmarks:
        summary["timings_s"] = {rule: round(read_benchmark_seconds(path), 2)
                                for rule, path in sorted(benchmarks.items())}
    if provenance:
        summary["provenance"] = provenance
    return summary


def write_summary(path: str | Path, **inputs: Any) -> dict:
    summary = build_summary(**inputs)
    write_json(path, summary)
    return summary
