"""VOC-sized training stages against their bare step, measured in one run (issue 16's CPU target: each stage's cost
within 15% of its network's).

For ``train_cam`` (cam), ``train_cam`` (clims), ``train_irn`` and ``train_seg`` (CCT with pseudo masks), with
``config/voc12.yaml``'s settings (ResNet-50, crops 512 / 320, CLIMS scoring through a ViT-B/16, IRN's radius 10,
CCT's 30 auxiliary decoders and its data workers) on the VOC-shaped stand-in and the stand-in weights, at a CPU batch:

- **stage**: the stage's own ``run()``: JPEG decode, augmentation, the DataLoader, the loop (learning-rate schedule,
  progress, history, resume checkpoints), timed by the loop's own clock (the steps after the first);
- **bare**: the same step function on the same model and optimizer (the bench wraps the stage's ``train_loop``),
  fed the epoch's same batches already decoded and on the device: forward, backward, optimizer step, nothing else.
  It runs over them just before and just after the stage's loop, and the ratio uses both, so this box's drift falls
  on both sides.

Prints seconds a step of both and stage / bare (target <= 1.15), and appends one JSON line per stage to --jsonl.

    .venv/bin/python bench/bench_train_stages.py [--images 24] [--batch 2] [--workers 1] [--jsonl docs/experiments/...]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from clims_core.config import validate_schema
from clims_core.data.manifest import Manifest
from clims_core.data.voc_standin import StandinSettings, generate_standin
from clims_core.io.masks import load_mask, save_mask
from clims_core.methods.clims_settings import resolve_clims_section
from clims_core.models.standin_weights import write_all
from clims_core.refine.mask_folder import add_stats, index_document, mask_relpath, mask_stats, write_index
from clims_core.stages import train_cam, train_irn, train_seg
from clims_core.stages.prepare_data import PrepareSettings
from clims_core.stages.prepare_data import run as prepare
from clims_core.training import loop

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.15  # stage seconds a step over bare seconds a step


class StepClockRecords(logging.Handler):
    """The loop's ``steps timed`` line of each training: (desc, steps, which, seconds a step, % waiting for data)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[str, tuple] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if "steps timed" in str(record.msg):
            self.lines[record.args[0]] = record.args


def bare_seconds(step_fn: Callable, optimizer: torch.optim.Optimizer, batches: list, first: int) -> list[float]:
    """Seconds of a bare step on each of ``batches`` (already on the device), numbered from ``first`` as in the
    stage's epoch (schedules such as CCT's unsupervised ramp read the step)."""
    times = []
    for step, batch in enumerate(batches, first):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        step_fn(batch, step, first + len(batches))
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def timing_loop(bare: dict[str, list[float]]) -> Callable:
    """``train_loop`` with bare steps of its own step function over the same batches just before and after it.

    The loop's clock times the steps after the first, so the bare passes do too (the first batch is their warm-up):
    a step's cost depends on its batch (CLIMS scores each positive class through CLIP), so both sides see the same."""
    real = loop.train_loop

    def wrapped(step_fn, model, optimizer, source, settings, device, dist, resume, desc, lr_factor, **kwargs):
        batches = [loop.to_device(batch, device) for batch in source.epoch(0, 0, dist)]
        bare_seconds(step_fn, optimizer, batches[:1], 0)
        times = bare_seconds(step_fn, optimizer, batches[1:], 1)
        result = real(step_fn, model, optimizer, source, settings, device, dist, resume, desc, lr_factor, **kwargs)
        bare[desc] = times + bare_seconds(step_fn, optimizer, batches[1:], 1)
        return result

    return wrapped


def mask_folder(manifest: Manifest, split: str, folder: Path) -> Path:
    """The split's ground-truth masks as a refiner's mask folder: IRN's IR labels and CCT's pseudo masks."""
    ids, stats = manifest.ids(split), {}
    for image_id in ids:
        mask = load_mask(manifest.mask_path(split, image_id))
        save_mask(folder / mask_relpath(image_id), mask)
        stats = add_stats(stats, mask_stats(mask))
    write_index(folder / "index.json", index_document(split, ids, manifest.classes, stats))
    return folder / "index.json"


def voc12_paths(work: Path) -> dict:
    """config/voc12.yaml as `make rehearsal` runs it from ``work``: its relative data root and weight paths land under
    ``work``, where the stand-in and the stand-in weights go."""
    config = yaml.safe_load((REPO / "config" / "voc12.yaml").read_text())
    for section, key in (("data", "root"), ("clip", "weights"), ("cam", "backbone_weights")):
        config[section][key] = str(work / config[section][key])
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2, help="images a step (each stream's, for CCT)")
    parser.add_argument("--images", type=int, default=16, help="train_aug images (half of them pixel-labeled)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: config/voc12.yaml's)")
    parser.add_argument("--stages", nargs="+", default=["cam", "clims", "irn", "cct"])
    parser.add_argument("--work", type=Path, default=None, help="keep the stand-in and weights here (default: temp)")
    parser.add_argument("--jsonl", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    clock = StepClockRecords()
    logging.getLogger(loop.__name__).addHandler(clock)
    logging.getLogger(loop.__name__).setLevel(logging.INFO)

    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        config = voc12_paths(work)
        root = Path(config["data"]["root"])
        if not root.is_dir():
            half = args.images // 2
            generate_standin(StandinSettings(scale=args.images / 10582, min_images=half), root, args.threads)
        if not Path(config["cam"]["backbone_weights"]).is_file():
            write_all(work / "weights")  # voc12.yaml's weights/ names
        config = validate_schema(config)  # the schema's defaults, what the workflow's rules read
        data = config["data"]
        manifest_path = work / "manifest.json"
        prepare(PrepareSettings(root=root, classes=data["classes"], split_files=data["splits"],
                                mask_dirs=data["mask_dirs"], threads=args.threads), manifest_path)
        manifest = Manifest.load(manifest_path)
        masks = mask_folder(manifest, "train_aug", work / "masks")
        runtime = dict(device="cpu", threads=args.threads, checkpoint_every=0)
        cam = {"backbone": config["cam"]["backbone"], "backbone_weights": config["cam"]["backbone_weights"],
               "train": config["cam"]["train"]}
        clims = resolve_clims_section(config["cam"]["clims"], data["stuff_classes"], config["eval"]["confounders"],
                                      data["classes"])
        out = work / "out"
        out.mkdir(exist_ok=True)
        cam_checkpoint = out / "cam.pt"
        b = args.batch
        stages: dict[str, tuple[Any, Callable[[Any], Any]]] = {
            "cam": (replace(train_cam.settings_from_config("cam", cam, None, **runtime), batch_size=b, epochs=1),
                    lambda s: train_cam.run(s, manifest_path, cam_checkpoint, out / "cam.json")),
            "clims": (replace(train_cam.settings_from_config("clims", cam, clims, **runtime), batch_size=b, epochs=1),
                      lambda s: train_cam.run(s, manifest_path, out / "clims.pt", out / "clims.json",
                                              init_checkpoint=cam_checkpoint,
                                              clip=(config["clip"]["model"], config["clip"]["weights"]))),
            "irn": (replace(train_irn.settings_from_config(config["refine"], cam, **runtime), batch_size=b, epochs=1),
                    lambda s: train_irn.run(s, manifest_path, masks, out / "irn.pt", out / "irn.json")),
            "cct": (replace(train_seg.settings_from_config("cct_weak_clims", config["seg"], cam, **runtime),
                            batch_labeled=b, batch_unlabeled=b, epochs=1),
                    lambda s: train_seg.run(s, manifest_path, out / "cct.pt", out / "cct.json", pseudo_index=masks)),
        }
        if "clims" in args.stages and "cam" not in args.stages:
            args.stages.insert(0, "cam")  # clims starts from the cam checkpoint
        rows = []
        for name in args.stages:
            settings, run = stages[name]
            if args.workers is not None:
                settings = replace(settings, workers=args.workers)
            bare: dict[str, list[float]] = {}
            module = {"cam": train_cam, "clims": train_cam, "irn": train_irn, "cct": train_seg}[name]
            module.train_loop = timing_loop(bare)
            try:
                run(settings)
            finally:
                module.train_loop = loop.train_loop
            (desc, bare_times), = bare.items()
            _, steps, _, stage_s, waiting = clock.lines[desc]
            bare_s = statistics.mean(bare_times)
            rows.append({"stage": name, "desc": desc, "batch": b, "workers": settings.workers, "threads": args.threads,
                         "stage_steps_timed": steps, "stage_s_per_step": round(stage_s, 3),
                         "bare_s_per_step": round(bare_s, 3), "bare_spread_s": round(float(np.ptp(bare_times)), 3),
                         "data_wait_pct": round(waiting, 1), "stage_over_bare": round(stage_s / bare_s, 3)})
            print(f"{desc}: stage {stage_s:.2f} s a step ({steps} steps, {waiting:.1f}% waiting), bare "
                  f"{bare_s:.2f} s (spread {np.ptp(bare_times):.2f}): {stage_s / bare_s:.3f}x", flush=True)

    print("\n| stage | batch | workers | bare s a step | stage s a step | data wait | stage / bare |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        mark = "" if r["stage_over_bare"] <= TARGET else " (over 1.15)"
        print(f"| {r['desc']} | {r['batch']} | {r['workers']} | {r['bare_s_per_step']:.2f} | "
              f"{r['stage_s_per_step']:.2f} | {r['data_wait_pct']:.1f}% | {r['stage_over_bare']:.3f}x{mark} |")
    if args.jsonl:
        with args.jsonl.open("a") as handle:
            for r in rows:
                handle.write(json.dumps({**r, "cpu": platform.processor() or platform.machine(),
                                         "torch": torch.__version__}) + "\n")


if __name__ == "__main__":
    main()
