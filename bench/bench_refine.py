"""Refinement speed, measured in one run: IRNet's random walk at VOC size, and IR labels (denseCRF) in 1 vs 2
processes on demo-world images.

1. Random walk: a 500 x 375 image's stride-4 map (94 x 125 = 11,750 pixels), 3 classes, radius 5, beta 10,
   2**8 steps, then upsampling and the background threshold (``make_pseudo_masks`` without the network), with 1 and 2
   torch threads. Target: <= 1 s per image on 2 CPU cores.
2. ``cam_to_ir_label`` over ``--images`` demo-world images (generated here, 128 px) with 1 and with 2 worker
   processes (synthetic smooth CAMs for each image's labelled classes, IRNet's CRF settings). Target: 2 processes
   >= 1.7x faster. The machine's load average is printed before each measurement: run it when the machine is idle.
3. With ``--cuda``: IRN training steps at VOC settings (ResNet-50 trunk, crop 512, batch 32, radius 10: time and
   peak memory) and the random walk on the GPU against the CPU result.

    .venv/bin/python bench/bench_refine.py [--images 1000] [--walks 5]
    python3 bench/bench_refine.py --cuda   (on a GPU machine; needs no pydensecrf)
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads, as train_irn's adapter: no spinning threads

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from clims_core.refine.random_walk import propagate, walk_to_mask  # noqa: E402


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def smooth_field(rng: np.random.Generator, planes: int, size: tuple[int, int], cells: int = 6) -> torch.Tensor:
    low = torch.from_numpy(rng.random((planes, cells, cells)).astype(np.float32))
    return F.interpolate(low[None], size=size, mode="bicubic", align_corners=False)[0].clamp(0, 1)


def bench_walk(walks: int) -> None:
    rng = np.random.default_rng(0)
    height, width = 375, 500
    small = (math.ceil(height / 4), math.ceil(width / 4))
    cams = smooth_field(rng, 3, small) ** 2
    cams = cams / cams.flatten(1).amax(dim=1).view(3, 1, 1)
    boundary = (smooth_field(rng, 1, small, 10)[0] - 0.5).abs().lt(0.03).float() * 0.9 + 0.05  # thin ridges
    keys = np.array([2, 7, 14])
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times = []
        for _ in range(walks):
            start = time.perf_counter()
            walked = propagate(cams, boundary, beta=10, exp_times=8, radius=5)
            walk_to_mask(walked, keys, (height, width), bg_thres=0.25)
            times.append(time.perf_counter() - start)
        print(f"random walk, VOC size ({small[0]}x{small[1]} map, 3 classes, 256 steps), {threads} thread(s): "
              f"median {statistics.median(times):.3f} s/image over {walks} ({load()})", flush=True)


def synthetic_store(manifest, path: Path) -> None:
    from clims_core.io.cam_store import CamStoreWriter

    rng = np.random.default_rng(1)
    with CamStoreWriter(path, {"bench": True}, "0" * 64) as writer:
        for item in manifest.splits["train_aug"]:
            keys = np.flatnonzero(item["labels"])
            high = smooth_field(rng, len(keys), (item["height"], item["width"])) ** 3
            high = (high / high.flatten(1).amax(dim=1).clamp_min(1e-6).view(-1, 1, 1)).numpy()
            low = F.interpolate(torch.from_numpy(high)[None], size=(math.ceil(item["height"] / 4),
                                math.ceil(item["width"] / 4)), mode="bilinear", align_corners=False)[0].numpy()
            writer.write(item["id"], keys, low, high)


def bench_ir_labels(images: int, work: Path) -> None:
    # imported here: the --cuda part runs where pydensecrf is not installed
    from clims_core.data.demo_world import DemoWorldSettings, generate_world
    from clims_core.data.manifest import Manifest
    from clims_core.stages import cam_to_ir_label
    from clims_core.stages.prepare_data import PrepareSettings
    from clims_core.stages.prepare_data import run as prepare

    settings = DemoWorldSettings(n_train_aug=images, labeled_fraction=0.1, n_val=5, n_captions=10)
    generate_world(settings, work / "world", workers=2, progress=False)
    prepare(PrepareSettings(root=work / "world" / "VOC", classes=list(settings.classes),
                            stuff_classes=list(settings.stuff_classes), threads=2), work / "manifest.json")
    manifest = Manifest.load(work / "manifest.json")
    synthetic_store(manifest, work / "cams.h5")
    seconds = {}
    for processes in (1, 2):
        out = work / f"ir{processes}"
        print(f"IR labels, {images} images, {processes} process(es): start ({load()})", flush=True)
        start = time.perf_counter()
        cam_to_ir_label.run(cam_to_ir_label.IrLabelSettings(processes=processes), work / "manifest.json",
                            work / "cams.h5", out, out / "index.json")
        seconds[processes] = time.perf_counter() - start
        print(f"IR labels, {processes} process(es): {seconds[processes]:.1f} s "
              f"({1000 * seconds[processes] / images:.1f} ms/image; {load()})", flush=True)
    same = all((work / "ir1" / "masks" / f"{i}.png").read_bytes() == (work / "ir2" / "masks" / f"{i}.png").read_bytes()
               for i in manifest.ids("train_aug"))
    print(f"IR labels: 2 processes are {seconds[1] / seconds[2]:.2f}x faster than 1 (target >= 1.7); "
          f"identical masks: {same}")


def bench_cuda(steps: int) -> None:
    """VOC settings on a GPU: IRN training steps (ResNet-50 trunk, crop 512, batch 32, radius 10) and the walk."""
    from clims_core.losses.irn import class_boundary_loss
    from clims_core.models.backbone import BackboneSpec, ResNetTrunk
    from clims_core.models.irn import EdgeNet, boundary_map
    from clims_core.refine.affinity import PairIndex

    device = torch.device("cuda")
    model = EdgeNet(ResNetTrunk(BackboneSpec(depth=50))).to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.branch_parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    pairs = PairIndex.build(128, 128, 10)
    images = torch.rand(32, 3, 512, 512, device=device).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 4, (32, 128, 128), device=device)
    labels[:, :, :20] = 255
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(images)
        loss, _ = class_boundary_loss(pairs.affinity(torch.sigmoid(logits.float())[:, 0]), *pairs.labels(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    print(f"IRN training step, VOC settings, {torch.cuda.get_device_name()}: "
          f"median {statistics.median(times[1:]):.3f} s "
          f"(loss {loss.item():.3f}, peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB)")
    rng = np.random.default_rng(0)
    cams = smooth_field(rng, 3, (94, 125)) ** 2
    boundary = (smooth_field(rng, 1, (94, 125), 10)[0] - 0.5).abs().lt(0.03).float() * 0.9 + 0.05
    cpu = propagate(cams, boundary)
    times = []
    for _ in range(5):
        torch.cuda.synchronize()
        start = time.perf_counter()
        gpu = propagate(cams.to(device), boundary.to(device))
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    error = (gpu.cpu() - cpu).abs().max().item() / cpu.abs().max().item()
    print(f"random walk, VOC size, CUDA: median {statistics.median(times[1:]):.4f} s/image, max relative difference "
          f"to the CPU result {error:.1e}")
    with torch.no_grad():
        model.eval()
        edge = boundary_map(model, torch.randint(0, 255, (3, 375, 500), dtype=torch.uint8), 512, device)
    print(f"boundary map of a 500x375 image at crop 512: {tuple(edge.shape)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="demo images for the IR-label bench")
    parser.add_argument("--walks", type=int, default=5, help="random walks timed per thread count")
    parser.add_argument("--cuda", action="store_true", help="instead: VOC-sized IRN training steps and walk on CUDA")
    parser.add_argument("--steps", type=int, default=6, help="IRN training steps timed with --cuda")
    args = parser.parse_args()
    if args.cuda:
        bench_cuda(args.steps)
        return
    bench_walk(args.walks)
    with tempfile.TemporaryDirectory() as tmp:
        bench_ir_labels(args.images, Path(tmp))


if __name__ == "__main__":
    main()
