"""Running the real workflow from tests: Snakemake in a subprocess, in a scratch folder, with a given config."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from clims_core.config import merge_config
from clims_core.data.voc_standin import VOC_SPLIT_SIZES

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "workflow" / "Snakefile"

TINY_DEMO = {
    "demo_world": {"enabled": True, "image_size": 64, "n_train_aug": 80, "labeled_fraction": 0.25, "n_val": 24,
                   "n_captions": 60},
    "data": {"classes": ["aeroplane", "bird", "boat", "car", "person", "train"],
             "stuff_classes": ["sky", "water", "railroad", "road", "grass"]},
    "eval": {"confounders": {"train": "railroad", "boat": "water"}},
    "clip": {
        "pretrain": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "text_width": 64, "embed_dim": 32,
                     "context_length": 24, "epochs": 1, "batch_size": 32},
        "finetune_settings": {"epochs": 1, "batch_size": 16},
    },
    "cam": {
        "backbone": {"depth": 18, "width": 8, "norm": "batch"},
        "train": {"epochs": 1, "batch_size": 8, "crop": 64, "resize_long": [48, 80], "workers": 0},
        "clims": {"epochs": 1, "batch_size": 8, "lr": 0.001, "similarity": "softmax", "area": "positives"},
    },
    "cams": {"scales": [1.0, 0.5], "workers": 0},
    "refine": {
        "densecrf": {"iterations": 3},
        "irn": {"trunk": "cam", "epochs": 1, "batch_size": 8, "crop": 64, "radius": 5, "workers": 0},
        "random_walk": {"exp_times": 5},
        "crf": {"split": "train"},
    },
    "seg": {
        "init": "cam",
        "cct": {"decoders": {"vat": 1, "dropout": 1, "cutout": 1, "context_masking": 1, "object_masking": 1,
                             "feature_drop": 1, "feature_noise": 1}},
        "train": {"epochs": 1, "batch_labeled": 4, "batch_unlabeled": 4, "crop": 48, "base_size": 64, "workers": 0},
        "deeplab": {"rates": [2, 4], "train": {"epochs": 1, "batch_size": 4, "crop": 48, "base_size": 64,
                                               "workers": 0}},
    },
}

# Claim 1 at reduced size: the demo config (its CAM and CLIMS recipe) on config/reduced.yaml's world (800 images at
# 96 px, a CLIP pretrained on 3,000 caption pairs at 48 px, CAMs at 3 scales), CAM and CLIMS only, run up to
# eval_cams (about 3 minutes on 2 cores).
REDUCED = yaml.safe_load((REPO / "config" / "reduced.yaml").read_text())
REDUCED_CLAIM1 = merge_config(copy.deepcopy(REDUCED), {"cam": {"methods": ["cam", "clims"]}, "refine": {"methods": []},
                                                     "seg": {"pseudo_methods": []}})


def demo_config_with(*overlays: dict) -> dict:
    """config/config.yaml with each overlay merged in, in order, as Snakemake merges --configfile files."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for overlay in overlays:
        merge_config(config, overlay)
    return config


def snakemake(workdir: Path, config: dict, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``snakemake`` on ``config`` (written to workdir/config.yaml) in ``workdir``; output is captured."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    # One thread per job (tests/conftest.py THREADS): with --cores 2 two jobs share the cores instead of one job's
    # two OpenMP threads waiting on each other when another process (or the other test worker) is running.
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
               "--configfile", str(config_path), "--max-threads", "1", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Jobs per rule from the table of ``snakemake -n --quiet rules`` (empty when nothing is to be done)."""
    counts = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts


VOC_SPLITS = VOC_SPLIT_SIZES  # the real dataset's split sizes, from the stand-in that mimics them


def make_fake_voc(root: Path) -> Path:
    """A VOC tree with VOC's split sizes and 4 px images: all that planning may look at (lists and folders)."""
    for folder in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Segmentation",
                   "ImageSets/SegmentationAug"):
        (root / folder).mkdir(parents=True)
    train_aug = [f"2007_{i:06d}" for i in range(VOC_SPLITS["train_aug"])]
    val = [f"2008_{i:06d}" for i in range(VOC_SPLITS["val"])]
    tiny = Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8))
    for image_id in train_aug + val:
        tiny.save(root / "JPEGImages" / f"{image_id}.jpg")
    (root / "ImageSets/SegmentationAug/train_aug.txt").write_text("\n".join(train_aug) + "\n")
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(train_aug[:VOC_SPLITS["train"]]) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(val) + "\n")
    return root


def voc_plan_config(voc_root: Path, scratch: Path) -> dict:
    """config/voc12.yaml on a fake VOC tree, with a tiny CLIP checkpoint and an empty ResNet-50 file (never loaded)."""
    from clims_core.models.clip import build_clip, save_clip_checkpoint
    from tests.conftest import TINY_CLIP_CFG

    config = yaml.safe_load((REPO / "config" / "voc12.yaml").read_text())
    config["data"]["root"] = str(voc_root)
    weights = scratch / "clip.pt"  # a tiny CLIP checkpoint of ours stands in for OpenAI's ViT-B-16.pt
    save_clip_checkpoint(weights, build_clip(TINY_CLIP_CFG), TINY_CLIP_CFG, {}, 0, model_name="tiny")
    config["clip"].update(model=None, weights=str(weights))
    for depth in (50, 101):  # planning checks that the files exist; nothing loads them
        (scratch / f"resnet{depth}.pth").write_bytes(b"")
    config["cam"]["backbone_weights"] = str(scratch / "resnet50.pth")
    config["seg"]["deeplab"]["backbone_weights"] = str(scratch / "resnet101.pth")
    return config
