"""Training-step time of the CAM network (plain CAM objective, SGD), fp32 vs the bf16 autocast that ``device: auto``
uses on CUDA, channels_last there. Prints ms per step and the ratio, both measured in this run.

    python bench/bench_train_step.py                      # CUDA: ResNet-50, batch 16, crop 512 (the VOC recipe)
    python bench/bench_train_step.py --depth 18 --width 32 --batch 16 --crop 128   # the demo net (CPU is fine)
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from clims_core.device import memory_format, pick_device
from clims_core.models.backbone import BackboneSpec
from clims_core.models.cam_net import CamNet
from clims_core.methods.cam import CamObjective


def time_steps(objective: CamObjective, device: torch.device, batch: int, crop: int, steps: int, bf16: bool) -> float:
    optimizer = torch.optim.SGD(objective.parameters(), lr=1e-3, momentum=0.9)
    fmt = memory_format(device)
    images = torch.rand(batch, 3, crop, crop, device=device).contiguous(memory_format=fmt)
    labels = (torch.rand(batch, objective.model.n_classes, device=device) < 0.2).float()
    cast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step() -> None:
        with cast:
            loss, _ = objective(images, labels, 0, 1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = pick_device(args.device)
    spec = BackboneSpec(depth=args.depth, width=args.width, norm="batch")
    model = CamNet(spec, 20).to(device, memory_format=memory_format(device)).train()
    objective = CamObjective(model)
    fp32 = time_steps(objective, device, args.batch, args.crop, args.steps, bf16=False)
    line = f"{device.type} ResNet-{args.depth} w{args.width} batch {args.batch} crop {args.crop}: fp32 {1000 * fp32:.1f} ms/step"
    if device.type == "cuda":
        bf16 = time_steps(objective, device, args.batch, args.crop, args.steps, bf16=True)
        line += f", bf16 autocast {1000 * bf16:.1f} ms/step ({fp32 / bf16:.2f}x), {args.batch / bf16:.0f} images/s"
        line += f"; peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
    print(line)


if __name__ == "__main__":
    main()
