"""Judging a CAM method over a family of worlds and seeds (issue 15): the config of one (world, seed, recipe) run,
and per world the mean and spread of the plain CAM, the method, their paired difference, wins and the worst
confounder pair's false-positive change. A result on one world is a fit; this is the table that says otherwise.

A row (one JSON line, written by ``bench/world_study.py``) is
``{"world", "seed", "recipe", "size", "methods": {method: {"miou": float, "fp": {pair: percent}}}, ...}``.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml

from clims_core.config import merge_config

DEMO_WORLD = "demo"  # the default world: config/config.yaml with no world overlay
SPLITS_FILE = "splits.yaml"  # config/worlds/splits.yaml: which worlds tune and which confirm (not a world)


def world_overlays(worlds_dir: Path) -> dict[str, Path]:
    """Each world's overlay file by name: every YAML file of the folder but the splits."""
    return {path.stem: path for path in sorted(worlds_dir.glob("*.yaml")) if path.name != SPLITS_FILE}


def world_names(worlds_dir: Path, selection: list[str]) -> list[str]:
    """Expand ``tune`` / ``confirm`` / ``all`` (config/worlds/splits.yaml) and check every name has an overlay."""
    splits = yaml.safe_load((worlds_dir / SPLITS_FILE).read_text())
    known = {DEMO_WORLD} | set(world_overlays(worlds_dir))
    names: list[str] = []
    for item in selection:
        expanded = splits["tune"] + splits["confirm"] if item == "all" else splits.get(item, [item])
        for name in expanded:
            if name not in known:
                raise ValueError(f"unknown world {name!r}: expected one of {sorted(known)} or tune / confirm / all "
                                 f"({worlds_dir / SPLITS_FILE})")
            if name not in names:
                names.append(name)
    return names


def run_config(base: dict, world_overlay: dict | None, size_overlay: dict | None, recipe_overlays: list[dict],
               seed: int, methods: list[str]) -> dict:
    """The config of one run: base <- size <- world <- seed <- recipes, merged as Snakemake merges config files.

    The world comes after the size overlay so that a world's own image size wins; the seed sets both the world's
    draw and the training seed; the recipes (method settings only) come last."""
    config = copy.deepcopy(base)
    for overlay in (size_overlay, world_overlay, {"seed": seed, "demo_world": {"seed": seed}}, *recipe_overlays):
        merge_config(config, overlay or {})
    config["cam"]["methods"] = list(methods)
    return config


def row_from_evals(world: str, seed: int, recipe: str, size: str, evals: dict[str, dict],
                   clip_eval: dict | None = None) -> dict:
    """One study row from each method's ``eval_train.json`` (eval_cams) and eval_clip's ``clip_eval.json``: per CLIP
    (pretrained, finetuned) its zero-shot mAP and the stuff test's masked-crop accuracies, in percent."""
    clips = {name: {"zero_shot_map": round(100 * result["zero_shot_map"], 2),
                    "object_accuracy": round(100 * result["stuff_test"]["object_accuracy"], 2),
                    "stuff_accuracy": round(100 * result["stuff_test"]["stuff_accuracy"], 2),
                    "object_crops": result["stuff_test"]["crops"]["object"]}
             for name, result in (clip_eval or {}).items()}
    methods = {}
    for method, result in evals.items():
        fp = {pair: round(100 * value["rate"], 2) for pair, value in result["confounder_fp"].items()
              if value["rate"] is not None}
        methods[method] = {"miou": round(result["miou"], 2), "fp": fp,
                           "best_threshold": result.get("best_threshold")}
        if result.get("best_at_sweep_edge"):  # the sweep may have cut the best threshold: keep that in the record
            methods[method]["best_at_sweep_edge"] = True
    return {"world": world, "seed": seed, "recipe": recipe, "size": size, "methods": methods, "clip": clips}


@dataclass(frozen=True)
class WorldSummary:
    world: str
    recipe: str
    seeds: list[int]
    baseline: list[float]           # plain CAM mIoU per seed
    method: list[float]             # the method's mIoU per seed
    fp_change: dict[str, float]     # mean over seeds of (method FP - baseline FP) per pair, in points
    fp_change_spread: dict[str, float]  # its sample sd over seeds: how far one seed's change says anything
    clip_object_change: list[float]  # per seed with both CLIPs: fine-tuned minus pretrained masked-object accuracy

    @property
    def deltas(self) -> list[float]:
        return [m - b for m, b in zip(self.method, self.baseline)]

    @property
    def wins(self) -> int:
        return sum(d > 0 for d in self.deltas)

    @property
    def worst_pair(self) -> tuple[str, float] | None:
        """The pair whose false positives rose most (or fell least)."""
        return max(self.fp_change.items(), key=lambda item: item[1]) if self.fp_change else None

    def meets(self, miou_margin: float, fp_margin: float) -> bool:
        """Issue 15's target: mean delta >= ``miou_margin`` and no pair's FP up by more than ``fp_margin`` points."""
        worst = self.worst_pair
        return mean(self.deltas) >= miou_margin and (worst is None or worst[1] <= fp_margin)


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def spread(values: list[float]) -> float:
    """Sample standard deviation (0 for one value): the seeds are a sample of what a user's seed would give."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(rows: list[dict], method: str = "clims", baseline: str = "cam") -> list[WorldSummary]:
    """Per (world, recipe), in first-seen order: paired per seed, seeds lacking either method left out."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if method in row["methods"] and baseline in row["methods"]:
            groups.setdefault((row["world"], row["recipe"]), []).append(row)
    summaries = []
    for (world, recipe), group in groups.items():
        group = sorted({row["seed"]: row for row in group}.values(), key=lambda row: row["seed"])  # last run per seed
        pairs = sorted(set.intersection(*(set(r["methods"][method]["fp"]) & set(r["methods"][baseline]["fp"])
                                          for r in group)))
        changes = {pair: [r["methods"][method]["fp"][pair] - r["methods"][baseline]["fp"][pair] for r in group]
                   for pair in pairs}
        clip_change = [r["clip"]["finetuned"]["object_accuracy"] - r["clip"]["pretrained"]["object_accuracy"]
                       for r in group if {"finetuned", "pretrained"} <= set(r.get("clip", {}))]
        summaries.append(WorldSummary(world, recipe, [r["seed"] for r in group],
                                      [r["methods"][baseline]["miou"] for r in group],
                                      [r["methods"][method]["miou"] for r in group],
                                      {pair: round(mean(values), 2) for pair, values in changes.items()},
                                      {pair: round(spread(values), 2) for pair, values in changes.items()},
                                      [round(change, 2) for change in clip_change]))
    return summaries


def markdown_table(summaries: list[WorldSummary], miou_margin: float = 3.0, fp_margin: float = 2.0,
                   method: str = "CLIMS") -> str:
    """The per-world table: means ± sample sd over seeds, paired delta, wins, worst pair (its paired change's mean ±
    sd over seeds), target met."""
    lines = [f"| world | recipe | seeds | plain CAM | {method} | delta | wins | worst pair FP change | target "
             "| CLIP fine-tuning: object crops |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        worst = s.worst_pair
        worst_text = f"{worst[0]} {worst[1]:+.1f} ± {s.fp_change_spread[worst[0]]:.1f}" if worst else "-"
        clip_text = f"{mean(s.clip_object_change):+.1f}" if s.clip_object_change else "-"
        lines.append(f"| {s.world} | {s.recipe} | {len(s.seeds)} | {mean(s.baseline):.1f} ± {spread(s.baseline):.1f} "
                     f"| {mean(s.method):.1f} ± {spread(s.method):.1f} "
                     f"| {mean(s.deltas):+.1f} ± {spread(s.deltas):.1f} "
                     f"| {s.wins}/{len(s.seeds)} | {worst_text} | {'yes' if s.meets(miou_margin, fp_margin) else 'no'} "
                     f"| {clip_text} |")
    return "\n".join(lines)


def clip_table(rows: list[dict]) -> str:
    """Per (world, recipe): what fine-tuning did to the CLIP, mean ± sample sd over seeds (last run per seed).

    Issue 15's target is that fine-tuning never costs more than 2 points of masked-object accuracy on any world; the
    crop count says how coarse one world's figure is (one crop of 50 is 2 points)."""
    groups: dict[tuple[str, str], dict[int, dict]] = {}
    for row in rows:
        if {"finetuned", "pretrained"} <= set(row.get("clip", {})):
            groups.setdefault((row["world"], row["recipe"]), {})[row["seed"]] = row["clip"]
    lines = ["| world | recipe | seeds | object crops | pretrained object acc | fine-tuned | change | zero-shot mAP "
             "pretrained -> fine-tuned |", "|---|---|---|---|---|---|---|---|"]
    for (world, recipe), by_seed in groups.items():
        clips = [by_seed[seed] for seed in sorted(by_seed)]
        before = [c["pretrained"]["object_accuracy"] for c in clips]
        after = [c["finetuned"]["object_accuracy"] for c in clips]
        change = [a - b for a, b in zip(after, before)]
        crops = [c["finetuned"].get("object_crops") for c in clips]
        crops_text = f"{mean(crops):.0f}" if None not in crops else "-"
        lines.append(f"| {world} | {recipe} | {len(clips)} | {crops_text} | {mean(before):.1f} | {mean(after):.1f} "
                     f"| {mean(change):+.1f} ± {spread(change):.1f} "
                     f"| {mean([c['pretrained']['zero_shot_map'] for c in clips]):.1f} -> "
                     f"{mean([c['finetuned']['zero_shot_map'] for c in clips]):.1f} |")
    return "\n".join(lines)


def downstream_from_evals(mask_evals: dict[tuple[str, str], dict], seg_evals: dict[str, dict]) -> dict:
    """The downstream half of a row: each (method, refiner)'s pseudo-mask mIoU (eval_masks, train split) and each
    segmentation run's val mIoU (eval_seg), both in percent."""
    masks: dict[str, dict[str, float]] = {}
    for (method, refiner), result in sorted(mask_evals.items()):
        masks.setdefault(method, {})[refiner] = round(result["miou"], 2)
    return {"masks": masks, "seg": {run: round(result["miou"], 2) for run, result in sorted(seg_evals.items())}}


@dataclass(frozen=True)
class DownstreamSummary:
    """One world's downstream figures, each a list over its seeds (last run per seed)."""
    world: str
    recipe: str
    seeds: list[int]
    cams: dict[str, list[float]]                # method -> CAM mIoU
    masks: dict[tuple[str, str], list[float]]   # (method, refiner) -> pseudo-mask mIoU
    seg: dict[str, list[float]]                 # run -> val mIoU

    def checks(self, method: str = "clims", baseline: str = "cam", cct_margin: float = 2.0) -> dict[str, bool]:
        """Issue 15's downstream targets on the means over seeds: each refiner lifts each method's masks above its
        CAMs; the method's masks >= the baseline's per refiner; CCT + the method's masks >= CCT + the baseline's and
        >= CCT labeled-only + ``cct_margin``."""
        result = {}
        for (name, refiner), values in self.masks.items():
            if name in self.cams:
                result[f"{refiner} lifts {name}"] = mean(values) > mean(self.cams[name])
        for refiner in sorted({refiner for _, refiner in self.masks}):
            if (method, refiner) in self.masks and (baseline, refiner) in self.masks:
                result[f"{refiner}: {method} >= {baseline}"] = (mean(self.masks[method, refiner])
                                                                 >= mean(self.masks[baseline, refiner]))
        ours, theirs, labeled = (self.seg.get(f"cct_weak_{method}"), self.seg.get(f"cct_weak_{baseline}"),
                                 self.seg.get("cct_labeled"))
        if ours and theirs:
            result[f"CCT: {method} >= {baseline}"] = mean(ours) >= mean(theirs)
        if ours and labeled:
            result[f"CCT: {method} >= labeled + {cct_margin:g}"] = mean(ours) >= mean(labeled) + cct_margin
        return result


def summarise_downstream(rows: list[dict]) -> list[DownstreamSummary]:
    """Per (world, recipe), in first-seen order, over the rows that carry downstream figures."""
    groups: dict[tuple[str, str], dict[int, dict]] = {}
    for row in rows:
        if row.get("masks") or row.get("seg"):
            groups.setdefault((row["world"], row["recipe"]), {})[row["seed"]] = row
    summaries = []
    for (world, recipe), by_seed in groups.items():
        group = [by_seed[seed] for seed in sorted(by_seed)]

        def common(keys_of) -> list:
            return sorted(set.intersection(*(set(keys_of(row)) for row in group)))

        cams = {m: [row["methods"][m]["miou"] for row in group] for m in common(lambda row: row["methods"])}
        masks = {(m, r): [row["masks"][m][r] for row in group]
                 for m, r in common(lambda row: [(m, r) for m, refs in row.get("masks", {}).items() for r in refs])}
        seg = {run: [row["seg"][run] for row in group] for run in common(lambda row: row.get("seg", {}))}
        summaries.append(DownstreamSummary(world, recipe, [row["seed"] for row in group], cams, masks, seg))
    return summaries


def downstream_table(summaries: list[DownstreamSummary], method: str = "clims", baseline: str = "cam") -> str:
    """Per world: CAMs, IRN and CRF masks (train split) and CCT (val) for the baseline and the method, mean ± sample
    sd over seeds, and which of issue 15's downstream targets the means meet."""
    def cell(values: list[float] | None) -> str:
        return f"{mean(values):.1f} ± {spread(values):.1f}" if values else "-"

    lines = [f"| world | recipe | seeds | CAM {baseline} / {method} | IRN {baseline} / {method} "
             f"| CRF {baseline} / {method} | CCT labeled / + {baseline} / + {method} | targets met |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        checks = s.checks(method, baseline)
        missed = [name for name, ok in checks.items() if not ok]
        met = f"{len(checks) - len(missed)}/{len(checks)}" + (f" (not: {'; '.join(missed)})" if missed else "")
        pair = " / ".join
        cct_runs = ("cct_labeled", f"cct_weak_{baseline}", f"cct_weak_{method}")
        lines.append(
            f"| {s.world} | {s.recipe} | {len(s.seeds)} "
            f"| {pair([cell(s.cams.get(baseline)), cell(s.cams.get(method))])} "
            f"| {pair([cell(s.masks.get((baseline, 'irn'))), cell(s.masks.get((method, 'irn')))])} "
            f"| {pair([cell(s.masks.get((baseline, 'crf'))), cell(s.masks.get((method, 'crf')))])} "
            f"| {pair([cell(s.seg.get(run)) for run in cct_runs])} "
            f"| {met} |")
    return "\n".join(lines)
