"""pretrain_clip + finetune_clip on the default demo world, timed against the 8-minute budget, plus the loop overhead.

Prints, measured in this run: wall seconds of each stage with the default config, their sum as a share of the 480 s
budget, and the pretraining loop's time per step relative to a bare forward+backward of the same model on the same
batch size (what batching, augmentation and the optimiser add).

    .venv/bin/python bench/bench_clip_stages.py [--world results/demo_world/<tag>] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import yaml

from clims_core.config import demo_world_arguments, validate_config
from clims_core.data.demo_world import DemoWorldSettings, generate_world
from clims_core.losses.contrastive import contrastive_loss
from clims_core.models.clip import clip_from_config
from clims_core.stages import finetune_clip, pretrain_clip
from clims_core.stages.prepare_data import PrepareSettings
from clims_core.stages.prepare_data import run as prepare

BUDGET_S = 480.0
REPO = Path(__file__).resolve().parent.parent


def bare_step_seconds(model_cfg: dict, batch: int, steps: int = 5) -> float:
    clip = clip_from_config(model_cfg, "bench")
    optimizer = torch.optim.AdamW(clip.model.parameters(), lr=1e-4)
    images = torch.rand(batch, 3, clip.image_size, clip.image_size)
    tokens = clip.tokenizer(["a picture of a train on a railroad under the sky."] * batch)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        image_features = clip.encode_image(images)
        text_features = torch.nn.functional.normalize(clip.model.encode_text(tokens), dim=-1)
        loss = contrastive_loss(image_features, text_features, 10.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, help="an existing demo world folder (default: generate one)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), REPO)
    work = Path(tempfile.mkdtemp(prefix="bench-clip-"))
    world = args.world
    if world is None:
        world = work / "world"
        generate_world(DemoWorldSettings(**demo_world_arguments(config)), world, workers=args.threads, progress=False)
    manifest = work / "manifest.json"
    prepare(PrepareSettings(root=world / "VOC", classes=config["data"]["classes"],
                            stuff_classes=config["data"]["stuff_classes"], threads=args.threads), manifest)

    pre_settings = pretrain_clip.settings_from_config(config["clip"]["pretrain"], 0, "cpu", args.threads)
    start = time.perf_counter()
    pre = pretrain_clip.run(pre_settings, world / "captions", work / "pre.pt", work / "pre.json")
    pretrain_s = time.perf_counter() - start
    ft_settings = finetune_clip.settings_from_config(config["clip"]["finetune_settings"], config["clip"]["class_names"],
                                                     0, "cpu", args.threads)
    start = time.perf_counter()
    finetune_clip.run(ft_settings, manifest, None, str(work / "pre.pt"), work / "ft.pt", work / "ft.json")
    finetune_s = time.perf_counter() - start

    steps = pre_settings.training.epochs * ((pre["pairs"] - pre["held_out"]) // pre_settings.training.batch_size)
    loop_step = pretrain_s / steps
    bare = bare_step_seconds(pre_settings.model_cfg, pre_settings.training.batch_size)
    result = {
        "pretrain_clip_s": round(pretrain_s, 1), "finetune_clip_s": round(finetune_s, 1),
        "total_s": round(pretrain_s + finetune_s, 1), "share_of_480s_budget": round((pretrain_s + finetune_s) / BUDGET_S, 3),
        "pretrain_step_s": round(loop_step, 3), "bare_step_s": round(bare, 3),
        "loop_step_over_bare_step": round(loop_step / bare, 3),
        "heldout_retrieval_at_1": pre["heldout_retrieval_at_1"], "threads": args.threads,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
