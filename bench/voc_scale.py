"""Projected time of config/voc12.yaml at VOC's full size and the paper's epochs, from a finished run of it.

Reads a finished `make rehearsal` (or any voc12.yaml run's folder): each training stage's per-step time and
data-wait share (the ``steps timed`` line train_loop logs; the first step, which starts the DataLoader workers, is left
out when there were more), each per-image stage's images/s (the ``N ... in S s`` line it logs) and every job's peak
host memory (its Snakemake benchmark's max_rss). Then, with the epochs and batch sizes of config/voc12.yaml (not the
run's cut ones) and VOC's 10,582 / 1,464 / 1,449 images, it projects each stage's time on the run's machine:

- training: seconds a step x the paper's steps (epochs x images // batch);
- per-image stages: seconds an image x VOC's images of that split.

Process start, model loading and evaluation are left out of the projection (minutes against hours at VOC size; they
are the run's measured wall times, printed beside). The busy share of a training stage is 1 - its data-wait share;
on a GPU that is the share the device is fed. No GPU memory is read here: on a lent GPU run this on that machine's
run folder and add ``torch.cuda.max_memory_allocated`` from the stage logs (not yet logged).

    .venv/bin/python bench/voc_scale.py --run rehearsal [--jsonl docs/experiments/voc_scale_cpu.jsonl]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import re
from pathlib import Path

import yaml

from clims_core.config import validate_config
from clims_core.data.voc_standin import VOC_SPLIT_SIZES as VOC
from clims_core.methods.clims_settings import resolve_clims_section

REPO = Path(__file__).resolve().parents[1]
STEP_LINE = re.compile(r"(\d+) steps timed \(([^)]*)\): ([\d.]+) s a step, ([\d.]+)% of it waiting for data")
MAKE_CAMS_LOG = re.compile(r"^\w+-[0-9a-f]{8}-(\w+?)(?:\.\d+-of-\d+)?$")  # <method>-<tag>-<split>[.<i>-of-<n>]
IMAGES_LINE = re.compile(r"(\d+) (?:images ->.*?|IR labels|pseudo masks|CRF masks) in ([\d.]+) s")


def training_plan(config: dict) -> dict[str, tuple[int, int, int]]:
    """Training log folder + name prefix -> (epochs, batch, images an epoch at VOC size) under ``config``."""
    clims = resolve_clims_section(config["cam"]["clims"], config["data"]["stuff_classes"],
                                  config["eval"]["confounders"], config["data"]["classes"])
    finetune, cam, irn = config["clip"]["finetune_settings"], config["cam"]["train"], config["refine"]["irn"]
    seg, deeplab = config["seg"]["train"], config["seg"]["deeplab"]["train"]
    image_level = VOC["train_aug"] - VOC["train"]  # CCT's epoch: one pass over the image-level stream
    plan = {"finetune_clip/": (finetune["epochs"], finetune["batch_size"], VOC["train_aug"])}
    for method in config["cam"]["methods"]:
        section = clims if method == "clims" else cam
        plan[f"train_cam/{method}-"] = (section["epochs"], section["batch_size"], VOC["train_aug"])
    for method in config["refine"]["methods"]:
        plan[f"train_irn/{method}-"] = (irn["epochs"], irn["batch_size"], VOC["train_aug"])
    plan["train_seg/"] = (seg["epochs"], seg["batch_unlabeled"], image_level)
    plan["train_deeplab/"] = (deeplab["epochs"], deeplab["batch_size"], VOC["train_aug"])
    return plan


def peak_rss_mib(run: Path, log: Path) -> float | None:
    """The job's max_rss from its Snakemake benchmark: logs/<rule>_<name>/<rest>.benchmark.tsv for a log
    logs/<rule>/<name>-<rest>.log (per-method and per-run rules), else beside the log."""
    rule, stem = log.parent.name, log.name.removesuffix(".log")
    name, _, rest = stem.partition("-")
    for found in (run / "logs" / f"{rule}_{name}" / f"{rest}.benchmark.tsv",
                  run / "logs" / rule / f"{stem}.benchmark.tsv"):
        if found.is_file():
            with found.open() as handle:
                return float(next(csv.DictReader(handle, delimiter="\t"))["max_rss"])
    return None


def training_rows(run: Path, run_config: dict, paper: dict) -> list[dict]:
    rows = []
    run_plan, paper_plan = training_plan(run_config), training_plan(paper)
    for prefix, (epochs, batch, images) in paper_plan.items():
        folder, _, start = prefix.partition("/")
        for log in sorted((run / "logs" / folder).glob(f"{start}*.log")):
            match = STEP_LINE.search(log.read_text())
            if not match:
                continue
            steps, which, per_step, wait = int(match[1]), match[2], float(match[3]), float(match[4]) / 100
            paper_steps = epochs * (images // batch)
            rows.append({"stage": f"{folder}[{log.stem.rpartition('-')[0] or 'clip'}]", "kind": "training",
                         "timed_steps": steps, "first_step_only": "only one" in which, "s_per_step": per_step,
                         "images_per_s": batch / per_step, "data_wait_share": wait, "busy_share": 1 - wait,
                         "paper_epochs": epochs, "batch": batch, "paper_steps": paper_steps,
                         "run_epochs": run_plan[prefix][0], "projected_s": per_step * paper_steps,
                         "peak_rss_mib": peak_rss_mib(run, log)})
    return rows


def per_image_rows(run: Path, run_config: dict) -> list[dict]:
    """make_cams per method and split, and the refiners per method: images/s over all of their shard jobs."""
    refine_split = run_config["refine"]["crf"]["split"]
    groups: dict[str, dict] = {}
    for log in sorted((run / "logs").glob("*/*.log")):
        rule = log.parent.name
        if rule not in ("make_cams", "cam_to_ir_label", "make_pseudo_masks", "crf_masks"):
            continue
        match = IMAGES_LINE.search(log.read_text())
        if not match:
            continue
        name = log.stem.split("-")[0]
        split = MAKE_CAMS_LOG.match(log.stem)[1] if rule == "make_cams" else (
            refine_split if rule == "crf_masks" else "train_aug")
        key = f"{rule}[{name}, {split}]"
        group = groups.setdefault(key, {"stage": key, "kind": "per image", "split": split, "jobs": 0, "images": 0,
                                        "seconds": 0.0, "peak_rss_mib": 0.0})
        group["jobs"] += 1
        group["images"] += int(match[1])
        group["seconds"] += float(match[2])
        group["peak_rss_mib"] = max(group["peak_rss_mib"], peak_rss_mib(run, log) or 0.0)
    for group in groups.values():
        rate = group["images"] / max(group["seconds"], 1e-9)
        group.update(images_per_s=rate, paper_images=VOC[group["split"]], projected_s=VOC[group["split"]] / rate)
    return list(groups.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=REPO / "rehearsal", help="a finished voc12.yaml run's folder")
    parser.add_argument("--paper", type=Path, default=REPO / "config" / "voc12.yaml")
    parser.add_argument("--jsonl", type=Path, help="append the rows here")
    args = parser.parse_args(argv)
    summary = json.loads((args.run / "results" / "report" / "summary.json").read_text())
    run_config = summary["provenance"]["config"]
    paper = validate_config(yaml.safe_load(args.paper.read_text()), base_dir=args.run)
    manifest = json.loads((args.run / summary["provenance"]["dataset"]["manifest"]).read_text())
    sizes = {split: len(ids) for split, ids in manifest["splits"].items()}  # the run's images per split
    rows = training_rows(args.run, run_config, paper) + per_image_rows(args.run, run_config)
    wall = sum(summary.get("timings_s", {}).values())
    total = sum(row["projected_s"] for row in rows)
    print(f"run: {args.run} ({', '.join(f'{k} {v}' for k, v in sizes.items())} images), "
          f"{platform.processor() or platform.machine()}, wall of its jobs {wall / 60:.1f} min")
    print(f"{'stage':34s} {'img/s':>8s} {'s/step':>8s} {'wait':>6s} {'paper steps/images':>19s} {'projected h':>12s}"
          f" {'peak host MiB':>14s}")
    for row in rows:
        per_step = f"{row['s_per_step']:.2f}" if "s_per_step" in row else "-"
        wait = f"{100 * row['data_wait_share']:.0f}%" if "data_wait_share" in row else "-"
        amount = row.get("paper_steps", row.get("paper_images"))
        rss = f"{row['peak_rss_mib']:.0f}" if row.get("peak_rss_mib") else "-"
        print(f"{row['stage']:34s} {row['images_per_s']:8.2f} {per_step:>8s} {wait:>6s} {amount:19,d} "
              f"{row['projected_s'] / 3600:12.1f} {rss:>14s}")
    print(f"whole pipeline at VOC size and the paper's epochs, one process after another on this machine: "
          f"{total / 3600:.0f} h ({total / 86400:.1f} days)")
    if args.jsonl:
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
        with args.jsonl.open("a") as handle:
            for row in rows:
                handle.write(json.dumps({"machine": platform.machine(), "run_images": sizes, **row}) + "\n")
            handle.write(json.dumps({"machine": platform.machine(), "run_images": sizes, "stage": "total",
                                     "projected_s": total, "run_wall_s": wall}) + "\n")


if __name__ == "__main__":
    main()
