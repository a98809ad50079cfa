"""One CCT training step at VOC scale on CPU: peak memory and step time, and what the chunked backward saves.

A step as ``train_seg`` runs it on VOC (ResNet-50 at output stride 8 with frozen BatchNorm, PSP, the main decoder and
CCT's 30 auxiliary decoders, 21 classes, 10 pixel-labeled + 10 image-level crops with pseudo masks, SGD), each
setting in a fresh process so the peak resident memory (``ru_maxrss``) is that setting's own:

- ``chunked`` (what train_seg does): the supervised loss backpropagated first, then the auxiliary decoders one at a
  time into a detached copy of the encoder output (:mod:`clims_core.methods.cct_objective`);
- ``summed`` (CCT's reference): one graph holding both batches and all 30 decoders, one backward.

Target: a chunked step at crop 320 fits in 24 GiB. The two modes are also compared at a smaller crop (the summed
step at 320 may not fit this machine), and their gradients are the same (tests/stages/test_seg_stages.py).

    .venv/bin/python bench/bench_cct_step.py [--crop 320] [--compare-crop 160] [--threads 2] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from clims_core.losses.cct import rampup_weight, softmax_mse, supervised_ce, weak_ce
from clims_core.models.backbone import BackboneSpec
from clims_core.models.cct import CCT, CctSpec, EncoderSpec
from clims_core.methods.cct_objective import CctLossSettings, cct_step

GIB = 1024**3


def summed_step(model: CCT, x_l, y_l, x_u, y_u, step: int, total: int, settings: CctLossSettings) -> None:
    """CCT's reference: every term in one graph, one backward."""
    sup = supervised_ce(model(x_l), y_l)
    z = model.features(x_u)
    main = model.main_decoder(z)
    target = F.softmax(main.detach(), dim=1)
    guidance = model.guidance(z, main)
    outs = [decoder(z, guidance) for decoder in model.aux_decoders]
    w_u = rampup_weight(step, total, settings.unsupervised_weight, settings.rampup)
    w_w = settings.weak_weight * rampup_weight(step, total, 1.0, settings.rampup)
    loss = sup + w_u * sum(softmax_mse(o, target) for o in outs) / len(outs) \
        + w_w * sum(weak_ce(o, y_u) for o in outs) / len(outs)
    loss.backward()


def worker(mode: str, crop: int, batch: int, steps: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    spec = CctSpec(EncoderSpec(BackboneSpec(depth=50, width=64, norm="frozen"), 8), n_classes=21)
    model = CCT(spec).train()
    trunk, rest = model.parameter_groups()
    optimizer = torch.optim.SGD([{"params": trunk, "lr": 1e-3}, {"params": rest}], lr=1e-2, momentum=0.9,
                                weight_decay=1e-4)
    x_l, x_u = torch.rand(batch, 3, crop, crop), torch.rand(batch, 3, crop, crop)
    y_l, y_u = torch.randint(0, 21, (batch, crop, crop)), torch.randint(0, 21, (batch, crop, crop))
    y_u[:, : crop // 4] = 255
    settings = CctLossSettings()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for step in range(steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        if mode == "chunked":
            cct_step(model, x_l, y_l, x_u, y_u, step + 50, 100, settings)
        else:
            summed_step(model, x_l, y_l, x_u, y_u, step + 50, 100, settings)
        optimizer.step()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"mode": mode, "crop": crop, "batch": batch, "aux_decoders": len(model.aux_decoders),
            "peak_gib": peak / GIB, "before_step_gib": base / GIB, "step_s": times[-1], "first_step_s": times[0]}


def measure(mode: str, crop: int, batch: int, steps: int, threads: int) -> dict:
    command = [sys.executable, __file__, "--worker", mode, "--crop", str(crop), "--batch", str(batch),
               "--steps", str(steps), "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"mode": mode, "crop": crop, "failed": done.stderr[-300:] or f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--compare-crop", type=int, default=160)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=("chunked", "summed"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.crop, args.batch, args.steps, args.threads)))
        return
    rows = [measure("chunked", args.crop, args.batch, args.steps, args.threads),
            measure("chunked", args.compare_crop, args.batch, args.steps, args.threads),
            measure("summed", args.compare_crop, args.batch, args.steps, args.threads)]
    for row in rows:
        if "failed" in row:
            print(f"{row['mode']:8s} crop {row['crop']}: FAILED {row['failed']}")
        else:
            print(f"{row['mode']:8s} crop {row['crop']} batch {row['batch']}+{row['batch']}, {row['aux_decoders']} aux "
                  f"decoders: peak {row['peak_gib']:.2f} GiB (model built: {row['before_step_gib']:.2f}), "
                  f"step {row['step_s']:.1f} s (first {row['first_step_s']:.1f} s)")
    full, small, summed = rows
    if "failed" not in full:
        verdict = "fits" if full["peak_gib"] <= 24 else "does NOT fit"
        print(f"VOC-sized step (crop {args.crop}, 10 + 10, ResNet-50 OS 8, 30 decoders): {full['peak_gib']:.2f} GiB "
              f"peak, {verdict} in 24 GiB; {full['step_s']:.1f} s per step on {args.threads} CPU threads")
    if "failed" not in small and "failed" not in summed:
        print(f"crop {args.compare_crop}: chunked / summed peak memory = {small['peak_gib'] / summed['peak_gib']:.2f}, "
              f"step time = {small['step_s'] / summed['step_s']:.2f}")


if __name__ == "__main__":
    main()
