"""Stage ``voc_submission``: a segmentation run's masks of the VOC 2012 test split in the evaluation server's layout.

The server takes an archive holding ``results/VOC2012/Segmentation/<comp>_test_cls/<id>.png``: one indexed PNG per test
id, at the image's size, with VOC's colour map and class indices 0..20 (no 255). ``comp5`` is for methods trained on
VOC data alone, ``comp6`` for methods that use other data too; CLIMS's CLIP and every ImageNet-initialised trunk are
other data, so this project's entries are comp6 (the default). The archive is checked against that layout
(:func:`check_submission`) before the stage ends.
"""

from __future__ import annotations

import io
import logging
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clims_core.checks import require_one_of
from clims_core.data.image_list import check_images
from clims_core.io.atomic import atomic_directory, atomic_path, write_json
from clims_core.io.digest import sha256_file
from clims_core.io.masks import voc_colormap
from clims_core.io.predictions import PredictionSettings, write_predictions
from clims_core.models.segmentation import load_for_inference

log = logging.getLogger(__name__)
COMPETITIONS = ("comp5", "comp6")


@dataclass(frozen=True)
class SubmissionSettings:
    prediction: PredictionSettings = PredictionSettings()
    competition: str = "comp6"
    device: str = "auto"
    threads: int = 1

    def __post_init__(self) -> None:
        require_one_of("submission.competition", self.competition, COMPETITIONS)


def server_folder(competition: str) -> str:
    return f"results/VOC2012/Segmentation/{competition}_test_cls"


def test_ids(test_root: Path, test_list: str) -> list[str]:
    """The ids of the test list (relative to ``test_root``), each with its JPEG there."""
    path = test_root / test_list
    if not path.is_file():
        raise ValueError(f"submission.test_list {path}: no such list file (expected one test id per line, as VOC "
                         f"2012 test's ImageSets/Segmentation/test.txt)")
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise ValueError(f"submission.test_list {path}: lists no ids")
    missing = [i for i in ids if not (test_root / "JPEGImages" / f"{i}.jpg").is_file()]
    if missing:
        raise ValueError(f"submission.test_root {test_root}: {len(missing)} test ids have no JPEGImages/<id>.jpg, "
                         f"e.g. {missing[:5]}")
    return ids


def check_submission(archive: str | Path, sizes: dict[str, tuple[int, int]], n_classes: int,
                     competition: str = "comp6") -> None:
    """Raise unless ``archive`` holds exactly one server-layout PNG per id: palette mode with VOC's colours, the image's
    ``(width, height)``, indices in 0..n_classes."""
    folder = server_folder(competition)
    problems = []
    palette = voc_colormap().reshape(-1).tolist()
    used = 3 * (n_classes + 1)  # the colours of background and the classes
    with tarfile.open(archive, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        expected = {f"{folder}/{i}.png" for i in sizes}
        if set(members) != expected:
            problems.append(f"missing {sorted(expected - set(members))[:3]}, unexpected "
                            f"{sorted(set(members) - expected)[:3]}")
        for image_id, size in sizes.items():
            member = members.get(f"{folder}/{image_id}.png")
            if member is None:
                continue
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as png:
                values = np.asarray(png)
                own = png.getpalette() if png.mode == "P" else None
                if own is None or own[:used] != palette[:used]:
                    problems.append(f"{image_id}: mode {png.mode}, not a VOC palette PNG")
                if png.size != tuple(size):
                    problems.append(f"{image_id}: size {png.size}, the image is {tuple(size)}")
                if values.size and values.max() > n_classes:
                    problems.append(f"{image_id}: index {values.max()} outside 0..{n_classes}")
    if problems:
        raise ValueError(f"{archive}: not in the VOC server's layout: {problems[:5]}")


def run(settings: SubmissionSettings, checkpoint_path: str | Path, test_root: str | Path, test_list: str,
        classes: list[str], out_dir: str | Path, archive_path: str | Path, run_name: str) -> dict[str, Any]:
    """Masks of every test id into ``out_dir`` (server layout + ``index.json``) and ``archive_path`` (.tar.gz)."""
    start = time.perf_counter()
    test_root = Path(test_root)
    ids = test_ids(test_root, test_list)
    paths = [test_root / "JPEGImages" / f"{i}.jpg" for i in ids]
    check_images(paths)
    model, _, device = load_for_inference(checkpoint_path, classes, settings.device, settings.threads)
    folder = server_folder(settings.competition)
    with atomic_directory(out_dir) as tmp:
        entries = write_predictions(model, paths, ids, tmp, settings.prediction, device, classes, mask_dir=folder,
                                    desc=f"voc_submission[{run_name}]")
        with atomic_path(archive_path) as tmp_archive:
            with tarfile.open(tmp_archive, "w:gz") as tar:
                for image_id in ids:
                    tar.add(tmp / folder / f"{image_id}.png", arcname=f"{folder}/{image_id}.png")
            check_submission(tmp_archive, {i: tuple(e["size"]) for i, e in zip(ids, entries)}, len(classes),
                             settings.competition)
        index = {"run": run_name, "competition": settings.competition, "checkpoint_sha256": sha256_file(checkpoint_path),
                 "images": len(ids), "archive": str(archive_path), "seconds": round(time.perf_counter() - start, 2)}
        write_json(tmp / "index.json", index)
    log.info("voc_submission %s: %d test masks -> %s", run_name, len(ids), archive_path)
    return index


def settings_from_config(submission: dict[str, Any], seg_eval: dict[str, Any], densecrf: dict[str, Any] | None,
                         device: str, precision: str, threads: int) -> SubmissionSettings:
    return SubmissionSettings(PredictionSettings.from_config(seg_eval, densecrf, precision),
                              competition=submission["competition"], device=device, threads=threads)
