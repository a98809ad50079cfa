"""segment throughput vs the bare network forward on the same inputs, measured in one run.

A folder of the demo world's val images (128 px JPEGs) is segmented by a DeepLabV2 of the demo's size (ResNet-18 of
width 32 at output stride 8, 7 classes), (a) through the whole ``segment`` stage: listing, the decode check of every
image, decode, whole-image prediction (padding, softmax), palette PNG writing and the index, with and without
overlays; and (b) only the network's forward on the same pre-decoded image tensors, one image at a time as the stage
runs them; after a warm-up of both, alternating, three times. It prints images/s of each and the median ratio (target
>= 0.85: everything around the network costs <= 15%).

    .venv/bin/python bench/bench_segment.py [--images 400] [--threads 2] [--repeats 3] [--jsonl docs/experiments/x.jsonl]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clims_core.data.demo_world import DemoWorldSettings, generate_world
from clims_core.io.checkpoint import save_checkpoint
from clims_core.models.backbone import BackboneSpec
from clims_core.models.deeplab import DeepLab, DeepLabSpec
from clims_core.models.segmentation import architecture_of
from clims_core.stages import segment


def demo_images(folder: Path, n: int) -> Path:
    """n val images of a demo world (128 px JPEGs) in one folder, as a user's own images would be."""
    settings = DemoWorldSettings(image_size=128, n_train_aug=40, labeled_fraction=0.25, n_val=n, n_captions=20)
    generate_world(settings, folder / "world", workers=2, progress=False)
    images = folder / "images"
    images.mkdir()
    for path in sorted((folder / "world" / "VOC" / "JPEGImages").glob("*.jpg"))[-n:]:
        path.rename(images / path.name)
    return images


def bare_forward(model: DeepLab, tensors: list[torch.Tensor]) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for tensor in tensors:
            model(tensor[None])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jsonl", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = demo_images(tmp, args.images)
        torch.manual_seed(0)
        model = DeepLab(DeepLabSpec(BackboneSpec(depth=18, width=32, strides=(2, 2, 2, 1), norm="batch"), 7,
                                    pretrained_strides=(2, 2, 2, 1))).eval()
        checkpoint = tmp / "model.pt"
        save_checkpoint(checkpoint, model.state_dict(), {}, 1, architecture=architecture_of(model))
        paths = sorted(images.glob("*.jpg"))
        tensors = []
        for path in paths:
            with Image.open(path) as image:
                tensors.append(torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float() / 255)
        classes = ["aeroplane", "bird", "boat", "car", "person", "train"]
        bare_forward(model, tensors[:20])  # warm-up (first calls build the convolutions' kernels)
        warm = tmp / "warm"
        warm.mkdir()
        for path in paths[:20]:
            (warm / path.name).symlink_to(path)
        segment.run(segment.SegmentSettings(device="cpu", threads=args.threads), checkpoint, warm, classes,
                    tmp / "warm_out", "bench")
        rows = []
        for overlays in (False, True):
            settings = segment.SegmentSettings(device="cpu", threads=args.threads, overlays=overlays)
            ratios, stages, bares = [], [], []
            for repeat in range(args.repeats):  # stage and bare forward alternate; the median ratio is reported
                start = time.perf_counter()
                segment.run(settings, checkpoint, images, classes, tmp / f"out{int(overlays)}-{repeat}", "bench")
                stages.append(time.perf_counter() - start)
                bares.append(bare_forward(model, tensors))
                ratios.append(bares[-1] / stages[-1])
            median = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
            rows.append({"images": len(paths), "overlays": overlays, "repeats": args.repeats,
                         "stage_img_s": round(len(paths) / stages[median], 1),
                         "bare_img_s": round(len(paths) / bares[median], 1), "ratio": round(ratios[median], 3),
                         "ratios": [round(r, 3) for r in ratios], "threads": args.threads})
    for row in rows:
        print(f"segment{' + overlays' if row['overlays'] else ''}: {row['stage_img_s']} img/s, bare forward "
              f"{row['bare_img_s']} img/s, ratio {row['ratio']:.3f} (median of {row['ratios']}; {row['images']} "
              f"images of 128 px)")
        if args.jsonl:
            with open(args.jsonl, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
