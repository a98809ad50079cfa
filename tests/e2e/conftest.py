"""One tiny demo run of the whole workflow per test session, shared by the end-to-end tests that inspect its outputs."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.e2e.workflow import TINY_DEMO, snakemake

USER_IMAGES = "my_images"  # the tiny run's `segment` target: a folder of the user's own images in its workdir
TEST_SPLIT = {"2008_000001": (60, 45), "2008_000002": (40, 52)}  # its voc_submission target: a stand-in VOC test split
SUBMITTED = ["cct_weak_clims", "deeplab_clims"]
TEST_ROOT = "VOC2012test"


@dataclass(frozen=True)
class TinyRun:
    workdir: Path
    result: subprocess.CompletedProcess
    config: dict


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """``snakemake --cores 2`` on TINY_DEMO plus a ``segment`` target on three images of other sizes and a
    ``voc_submission`` target on a two-image test split, in a scratch folder; each test asserts what it needs of it."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    rng = np.random.default_rng(0)
    (workdir / USER_IMAGES).mkdir()
    for index, (width, height) in enumerate(((64, 48), (50, 70), (33, 33))):
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(
            workdir / USER_IMAGES / f"photo{index}.jpg")
    test_root = workdir / TEST_ROOT
    (test_root / "JPEGImages").mkdir(parents=True)
    (test_root / "ImageSets" / "Segmentation").mkdir(parents=True)
    for image_id, (width, height) in TEST_SPLIT.items():
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(
            test_root / "JPEGImages" / f"{image_id}.jpg")
    (test_root / "ImageSets" / "Segmentation" / "test.txt").write_text("\n".join(TEST_SPLIT) + "\n")
    config = {**TINY_DEMO, "segment": {"images": USER_IMAGES},
              "submission": {"test_root": TEST_ROOT, "runs": SUBMITTED}}
    return TinyRun(workdir, snakemake(workdir, config, "--cores", "2"), config)
