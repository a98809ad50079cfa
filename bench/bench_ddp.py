"""DDP overhead on CPU: ``train_cam`` (plain CAM, demo net) with 2 gloo processes of 1 thread each vs 1 process of 2
threads, the same global batch and steps. Prints images/s of both and the ratio, measured in this run.

    python bench/bench_ddp.py --images 400 --epochs 2

Target (issue 8): the DDP run reaches >= 0.8x the single process's throughput. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clims_core.stages import make_demo_world, prepare_data  # noqa: E402
from clims_core.training.launch import run_stage  # noqa: E402

CLASSES = ["aeroplane", "bird", "boat", "car", "person", "train"]
STUFF = ["sky", "water", "railroad", "road", "grass"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_ddp_"))
    make_demo_world.run({"seed": 0, "image_size": 128, "n_train_aug": args.images, "labeled_fraction": 0.1,
                         "n_val": 10, "n_captions": 10, "classes": CLASSES, "stuff_classes": STUFF}, work / "world", 2)
    prepare_data.run(prepare_data.PrepareSettings(root=work / "world" / "VOC", classes=CLASSES, stuff_classes=STUFF,
                                                  threads=2), work / "manifest.json")
    cam = {"backbone": {"depth": 18, "width": 32, "strides": [2, 2, 2, 1], "norm": "batch"}, "backbone_weights": None,
           "train": {"epochs": args.epochs, "batch_size": args.batch, "lr": 0.1, "weight_decay": 1e-4,
                     "momentum": 0.9, "crop": 128, "resize_long": [96, 160], "workers": 0},
           "puzzlecam": {"alpha": 4.0, "schedule": 0.5, "level": "feature"}}
    results = {}
    for processes, threads in ((1, 2), (2, 1)):
        out = work / f"p{processes}"
        arguments = {"method": "cam", "cam": cam, "clims": None, "clip": None, "seed": 0,
                     "device": "cpu", "threads": threads, "checkpoint_every": 0,
                     "manifest": str(work / "manifest.json"), "checkpoint": str(out / "model.pt"),
                     "metrics": str(out / "metrics.json"), "resume": None}
        os.environ["OMP_NUM_THREADS"] = str(threads)
        start = time.perf_counter()
        run_stage("train_cam", arguments, processes, out)
        wall = time.perf_counter() - start
        metrics = json.loads((out / "metrics.json").read_text())
        images = metrics["steps"] * args.batch
        results[processes] = (images / metrics["seconds"], images / wall)
        print(f"{processes} process(es) x {threads} thread(s): {results[processes][0]:.1f} images/s in training, "
              f"{results[processes][1]:.1f} images/s with process start ({wall:.1f} s)")
    print(f"DDP 2x1 / single 1x2: {results[2][0] / results[1][0]:.2f}x in training, "
          f"{results[2][1] / results[1][1]:.2f}x with process start")


if __name__ == "__main__":
    main()
