"""`make rehearsal`'s path on a few images: config/voc12.yaml with the VOC-shaped stand-in and the stand-in weights,
every rule for real, one step per training stage.

What stays voc12.yaml's: the VOC 2012 + SBD layout and its 20 classes, the OpenAI-format ViT-B/16 (loaded through the
same code as OpenAI's file), the ImageNet-layout ResNet-50 and ResNet-101 with frozen BatchNorm, the `cvpr` preset,
CCT's 30 auxiliary decoders, DeepLabV2's ASPP, 4 scales x flip, sharded make_cams and refinement with their merges,
IRN's radius 10 and the threshold walk. What the test cuts: images (4 / 2 / 2, long side 96), crops, batch sizes
(one step each), shards (2) and DataLoader workers, so it runs in minutes on this 2-core CPU rather than `make
rehearsal`'s hour.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from clims_core.config import merge_config
from clims_core.data.manifest import Manifest
from clims_core.data.voc_standin import VOC_CLASSES, StandinSettings, generate_standin
from clims_core.models.standin_weights import write_openai_clip, write_torchvision_resnet
from tests.e2e.workflow import REPO, planned_jobs, snakemake

pytestmark = pytest.mark.e2e

# On top of config/rehearsal.yaml (one epoch a training), batches of the whole split: 4 train_aug images, 2 of them
# the pixel-labeled train split (CCT's labeled batch) and 2 image-level only (its unlabeled batch); one step each.
FEW_IMAGES = {
    "clip": {"finetune_settings": {"batch_size": 4}},
    "cam": {"train": {"batch_size": 4, "crop": 64, "resize_long": [48, 96], "workers": 0}, "clims": {"batch_size": 4}},
    "cams": {"shards": 2, "workers": 0},
    "refine": {"shards": 2, "irn": {"batch_size": 4, "crop": 96, "workers": 0}},
    "seg": {"train": {"batch_labeled": 2, "batch_unlabeled": 2, "crop": 64, "base_size": 96, "workers": 0},
            "deeplab": {"train": {"batch_size": 4, "crop": 64, "base_size": 96, "workers": 0}},
            "eval": {"workers": 0}},
}


def rehearsal_config() -> dict:
    """config/voc12.yaml + config/rehearsal.yaml + FEW_IMAGES, merged as Snakemake merges --configfile files; its
    data and weight paths stay voc12.yaml's (relative to the work folder)."""
    config = yaml.safe_load((REPO / "config" / "voc12.yaml").read_text())
    for overlay in (yaml.safe_load((REPO / "config" / "rehearsal.yaml").read_text()), FEW_IMAGES):
        merge_config(config, overlay)
    return config


def test_voc12_runs_every_rule_on_the_standin(tmp_path: Path):
    config = rehearsal_config()
    sizes = generate_standin(StandinSettings(scale=4e-4, min_images=2, long_side=96), tmp_path / config["data"]["root"],
                             progress=False)
    assert sizes == {"train_aug": 4, "train": 2, "val": 2}
    # the files voc12.yaml reads, where it reads them (not the open_clip copy `make rehearsal` also writes: 600 MB)
    write_openai_clip(tmp_path / config["clip"]["weights"])
    write_torchvision_resnet(tmp_path / config["cam"]["backbone_weights"], 50)
    write_torchvision_resnet(tmp_path / config["seg"]["deeplab"]["backbone_weights"], 101)
    planned = planned_jobs(snakemake(tmp_path, config, "-n", "--quiet", "rules"))
    for rule in ("finetune_clip", "train_cam", "make_cams", "merge_cams", "cam_to_ir_label", "train_irn",
                 "make_pseudo_masks", "crf_masks", "train_seg", "train_deeplab", "eval_seg", "report"):
        assert planned.get(rule), (rule, planned)
    assert "pretrain_clip" not in planned and "pretrain_trunk" not in planned  # the weights files stand for both
    assert planned["make_cams"] == 2 * planned["merge_cams"]  # two shards a store

    result = snakemake(tmp_path, config, "--cores", "2", timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]

    manifest = Manifest.load(next((tmp_path / "results" / "data").glob("*/manifest.json")))
    assert manifest.classes == list(VOC_CLASSES) and manifest.skipped == []
    summary = json.loads((tmp_path / "results" / "report" / "summary.json").read_text())
    assert set(summary["cams"]) == {"cam", "puzzlecam", "clims"}
    assert list(summary["seg"]) == ["cct_labeled", "cct_weak_cam", "cct_weak_clims", "deeplab_cam", "deeplab_clims"]
    assert summary["provenance"]["config"]["cam"]["clims"]["preset"] == "cvpr"
    assert summary["provenance"]["config"]["clip"]["model"] == "ViT-B-16-quickgelu"
    (finetuned,) = (tmp_path / "results" / "clip").glob("finetune-*/clip.pt")
    assert finetuned.stat().st_size > 500e6  # a whole ViT-B/16 (150 M parameters in fp32) was fine-tuned and saved
    for rule in planned:  # each planned rule left a log: nothing was skipped
        if rule != "all":
            assert list((tmp_path / "logs" / rule).rglob("*.log")), f"no log for {rule}"
    assert (tmp_path / "results" / "report" / "index.html").is_file()
    again = snakemake(tmp_path, config, "-n", "--cores", "2")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
