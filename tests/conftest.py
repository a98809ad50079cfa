"""Shared fixtures: tiny VOC-layout trees built in the test, so the reader is tested on files like real ones."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clims_core.data.manifest import Manifest
from clims_core.io.masks import IGNORE_INDEX, load_mask, save_mask

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# One intra-op thread per test process; `make test` runs two pytest-xdist workers instead. On a 2-core machine that
# another process loads, two OpenMP threads wait on each other at every parallel region: a ResNet-18 training step
# of the tests' size took 1.6x longer with 2 threads than with 1 while one other process ran (2.2x with three).
THREADS = 1
torch.set_num_threads(THREADS)

REPO = Path(__file__).resolve().parent.parent
CLASSES = ["cat", "dog", "train"]


def write_xml(path: Path, names: list[str], size: tuple[int, int]) -> None:
    objects = "".join(
        f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
        f"<xmax>{size[0]}</xmax><ymax>{size[1]}</ymax></bndbox></object>"
        for n in names
    )
    path.write_text(f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height></size>{objects}</annotation>")


@dataclass
class VocTree:
    root: Path
    classes: list[str]

    def add(self, image_id: str, names: list[str] | None, mask_values: list[int] | None = None,
            size: tuple[int, int] = (24, 16), mask_size: tuple[int, int] | None = None,
            mask_dir: str = "SegmentationClass") -> None:
        """An image (width x height), optionally an XML with ``names`` and a mask filled with ``mask_values`` stripes."""
        rng = np.random.default_rng(abs(hash(image_id)) % 2**32)
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(self.root / "JPEGImages" / f"{image_id}.jpg")
        if names is not None:
            write_xml(self.root / "Annotations" / f"{image_id}.xml", names, size)
        if mask_values is not None:
            w, h = mask_size or size
            mask = np.zeros((h, w), dtype=np.uint8)
            for i, value in enumerate(mask_values):
                mask[:, i * w // len(mask_values):(i + 1) * w // len(mask_values)] = value
            (self.root / mask_dir).mkdir(exist_ok=True)
            save_mask(self.root / mask_dir / f"{image_id}.png", mask)

    def split(self, name: str, ids: list[str]) -> None:
        (self.root / "ImageSets" / "Segmentation" / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))


@pytest.fixture
def voc_tree(tmp_path: Path) -> VocTree:
    """A valid 5-image VOC tree: train_aug a,b,c,d (d labelled by an SBD mask only), train a,b, val e."""
    root = tmp_path / "VOC"
    for folder in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    tree = VocTree(root, list(CLASSES))
    tree.add("a", ["cat"], [0, 1, 255])
    tree.add("b", ["dog", "train"], [0, 2, 3])
    tree.add("c", ["train"])
    tree.add("d", None, [0, 1, 2], mask_dir="SegmentationClassAug")
    tree.add("e", ["cat", "dog"], [1, 2])
    tree.split("train_aug", ["a", "b", "c", "d"])
    tree.split("train", ["a", "b"])
    tree.split("val", ["e"])
    return tree


TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32, "mlp_ratio": 2.0},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> dict:
    """A small demo world (64 px) and its manifest, generated once per test session."""
    from clims_core.data.demo_world import DemoWorldSettings, generate_world
    from clims_core.stages.prepare_data import PrepareSettings, run

    out = tmp_path_factory.mktemp("world") / "world"
    settings = DemoWorldSettings(image_size=64, n_train_aug=160, labeled_fraction=0.25, n_val=48, n_captions=600)
    generate_world(settings, out, workers=2, progress=False)
    manifest = out.parent / "manifest.json"
    run(PrepareSettings(root=out / "VOC", classes=list(settings.classes), stuff_classes=list(settings.stuff_classes),
                        captions=out / "captions", threads=THREADS), manifest)
    return {"dir": out, "voc": out / "VOC", "captions": out / "captions", "manifest": manifest, "settings": settings}


def _ground_truth(settings, image_ids: list[str]) -> dict[str, np.ndarray]:
    """Class masks of train_aug images, re-rendered from the world's seed (the world writes masks for the
    pixel-labeled subset only)."""
    from clims_core.data.demo_world import world as W
    from clims_core.data.demo_world.scene import render_scene
    from clims_core.data.demo_world.stuff import build_bank

    wanted = set(image_ids)
    bank = build_bank(settings.seed, settings.image_size)
    masks = {}
    for task in W.plan_tasks(settings):
        if task.split == "train_aug" and task.image_id in wanted:
            rng = W.image_streams(settings.seed, W.SPLIT_CODES["train_aug"], task.index)[W.RENDER_STREAM]
            masks[task.image_id] = render_scene(task.plan, settings, rng, bank).class_mask
    return masks


def _noisy_pseudo_masks(world: dict, out: Path, ignore_share: float = 0.1) -> Path:
    """Ground truth with noise as pseudo masks (a share of pixels set to ignore), in the refinement stage's
    index.json form."""
    manifest = Manifest.load(world["manifest"])
    ids = manifest.ids("train_aug")
    truth = _ground_truth(world["settings"], ids)
    labeled = manifest.mask_path("train", manifest.ids("train")[0])
    assert np.array_equal(truth[manifest.ids("train")[0]], load_mask(labeled))  # the re-rendering is faithful
    rng = np.random.default_rng(0)
    (out / "masks").mkdir(parents=True)
    for image_id in ids:
        mask = truth[image_id].copy()
        mask[rng.random(mask.shape) < ignore_share] = IGNORE_INDEX
        save_mask(out / "masks" / f"{image_id}.png", mask)
    index = out / "index.json"
    index.write_text(json.dumps({"split": "train_aug", "ids": ids, "masks": {i: f"masks/{i}.png" for i in ids},
                                 "classes": manifest.classes}))
    return index


@pytest.fixture(scope="session")
def noisy_pseudo_masks(tiny_world, tmp_path_factory) -> Path:
    """The tiny world's train_aug ground truth with 10% of pixels set to ignore, as a refinement stage's index."""
    return _noisy_pseudo_masks(tiny_world, tmp_path_factory.mktemp("pseudo"))


def launch_stage(stage: str, arguments: dict, folder: Path, processes: int) -> None:
    """Run a training stage in its own process(es), as the rules do (torchrun for several, one thread each)."""
    import json
    import os
    import subprocess

    from clims_core.training.launch import stage_command

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "arguments.json").write_text(json.dumps(arguments))
    result = subprocess.run(stage_command(stage, folder / "arguments.json", processes), capture_output=True,
                            text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


SHARED_SESSION_FIXTURES = ("tiny_run", "slurm_cluster")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test``), the tests that share an expensive session fixture (the tiny end-to-end
    run, the Slurm cluster) go to one worker (``--dist loadgroup``), so each is built once. tryfirst: xdist reads the
    marks in its own hook of this name (it appends ``@group`` to the node id); run after it, the marks came too late
    and both workers built the tiny run (2 x 150 s)."""
    for item in items:
        for fixture in SHARED_SESSION_FIXTURES:
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(fixture))
