"""make_cams throughput vs the bare network forward on the same inputs, measured in one run.

For each setting (the demo world's images with the demo's ResNet-18; synthetic VOC-sized 500x375 JPEGs with a
ResNet-50), it times (a) the whole ``make_cams`` stage: JPEG decode, multi-scale resize, network, normalisation and
HDF5 writing, and (b) only the network's ``cams()`` calls on the same pre-decoded images at the same scales and flips.
It prints images/s of both and their ratio (target >= 0.85: decode, resize and writing cost <= 15%).

    .venv/bin/python bench/bench_make_cams.py [--images 40] [--voc-images 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clims_core.data.demo_world import DemoWorldSettings, generate_world
from clims_core.data.manifest import Manifest
from clims_core.io.checkpoint import save_checkpoint
from clims_core.io.masks import save_mask
from clims_core.models.backbone import BackboneSpec
from clims_core.stages import make_cams
from clims_core.stages.prepare_data import PrepareSettings
from clims_core.stages.prepare_data import run as prepare
from clims_core.stages.train_cam import build_model

SCALES = (1.0, 0.5, 1.5, 2.0)


def checkpoint(path: Path, spec: BackboneSpec, n_classes: int) -> None:
    torch.manual_seed(0)
    model = build_model(spec, n_classes)
    arch = {"backbone": {**spec.__dict__, "weights": None, "strides": list(spec.strides)}, "n_classes": n_classes,
            "background_channel": False}
    save_checkpoint(path, model.state_dict(), {"method": "cam"}, 0, architecture=arch)


def voc_sized_tree(root: Path, n: int) -> None:
    """n synthetic 500x375 JPEGs (smooth colour fields) with two labelled classes each."""
    rng = np.random.default_rng(0)
    for folder in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    ids = [f"v{i:04d}" for i in range(n)]
    for image_id in ids:
        low = rng.random((3, 12, 16)).astype(np.float32)
        field = F.interpolate(torch.from_numpy(low)[None], size=(375, 500), mode="bicubic", align_corners=False)[0]
        Image.fromarray((field.clamp(0, 1).numpy().transpose(1, 2, 0) * 255).astype(np.uint8)).save(
            root / "JPEGImages" / f"{image_id}.jpg", quality=90)
        mask = np.zeros((375, 500), np.uint8)
        mask[50:200, 50:250], mask[200:350, 250:480] = 1, 2
        save_mask(root / "SegmentationClass" / f"{image_id}.png", mask)
    for split in ("train_aug", "train", "val"):
        (root / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")


@torch.no_grad()
def bare_forward_seconds(model: torch.nn.Module, images: list[torch.Tensor]) -> float:
    """Only the network: the same scales and flips on pre-decoded float images, nothing resized back or written."""
    inputs = []
    for image in images:
        x = image.float().div(255)[None]
        for scale in SCALES:
            size = (round(x.shape[-2] * scale), round(x.shape[-1] * scale))
            y = x if scale == 1.0 else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            inputs.append(torch.cat([y, y.flip(-1)]))
    start = time.perf_counter()
    for x in inputs:
        model.cams(x)
    return time.perf_counter() - start


def measure(name: str, manifest_path: Path, spec: BackboneSpec, work: Path, threads: int, workers: int) -> dict:
    manifest = Manifest.load(manifest_path)
    ckpt = work / f"{name}.pt"
    checkpoint(ckpt, spec, len(manifest.classes))
    settings = make_cams.MakeCamsSettings(split="train", scales=SCALES, device="cpu", threads=threads, workers=workers)
    make_cams.run(settings, manifest_path, ckpt, work / f"{name}-warmup.h5")  # warm caches and allocator
    start = time.perf_counter()
    make_cams.run(settings, manifest_path, ckpt, work / f"{name}.h5")
    stage = time.perf_counter() - start
    model, _ = make_cams.load_cam_model(ckpt)
    images = [torch.from_numpy(np.asarray(Image.open(manifest.image_path(i)).convert("RGB")).transpose(2, 0, 1).copy())
              for i in manifest.ids("train")]
    bare = bare_forward_seconds(model, images)
    n = len(images)
    return {"setting": name, "images": n, "stage_img_per_s": round(n / stage, 3), "bare_img_per_s": round(n / bare, 3),
            "stage_over_bare_throughput": round(bare / stage, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40, help="demo-world images")
    parser.add_argument("--voc-images", type=int, default=4, help="VOC-sized synthetic images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers decoding images (cams.workers)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-make-cams-"))
    world = work / "world"
    generate_world(DemoWorldSettings(n_train_aug=args.images, labeled_fraction=0.99, n_val=5, n_captions=10), world,
                   workers=args.threads, progress=False)
    demo_manifest = work / "demo.json"
    prepare(PrepareSettings(root=world / "VOC", classes=list(DemoWorldSettings().classes), threads=args.threads),
            demo_manifest)
    voc_sized_tree(work / "voc", args.voc_images)
    voc_manifest = work / "voc.json"
    prepare(PrepareSettings(root=work / "voc", classes=[f"c{i}" for i in range(20)], threads=args.threads), voc_manifest)
    results = [
        measure("demo-128px-resnet18w32", demo_manifest, BackboneSpec(depth=18, width=32, norm="batch"), work, args.threads,
                args.workers),
        measure("voc-500x375-resnet50", voc_manifest, BackboneSpec(depth=50), work, args.threads, args.workers),
    ]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
