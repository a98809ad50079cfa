"""Stage ``prepare_data``: scan a VOC-layout folder once, check every image, write the manifest."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from clims_core.data.manifest import SCHEMA_VERSION, SPLITS
from clims_core.data.voc import ImageRecord, Problem, VocDataset
from clims_core.io.atomic import write_json
from clims_core.version import code_version

log = logging.getLogger(__name__)

PIXEL_LABELED = ("train", "val")


class DatasetError(ValueError):
    """The dataset has bad inputs and ``on_error`` is strict; the message lists every problem with its file."""


@dataclass(frozen=True)
class PrepareSettings:
    root: Path
    classes: list[str]
    stuff_classes: list[str] = field(default_factory=list)
    split_files: dict[str, str] = field(default_factory=lambda: {s: f"ImageSets/Segmentation/{s}.txt" for s in SPLITS})
    mask_dirs: list[str] = field(default_factory=lambda: ["SegmentationClass", "SegmentationClassAug"])
    captions: Path | None = None
    on_error: str = "strict"
    threads: int = 1

    def __post_init__(self) -> None:
        if self.on_error not in ("strict", "skip"):
            raise ValueError(f"on_error: expected 'strict' or 'skip', got {self.on_error!r}")
        missing = [s for s in SPLITS if s not in self.split_files]
        if missing:
            raise ValueError(f"split_files: missing {missing}")


def scan(settings: PrepareSettings) -> tuple[dict[str, list[ImageRecord]], list[Problem]]:
    """Check every listed image (threads: image decoding releases the GIL); return good records and all problems."""
    dataset = VocDataset(settings.root, settings.classes, settings.mask_dirs)
    split_ids = {split: dataset.read_split(settings.split_files[split]) for split in SPLITS}
    jobs = [(split, image_id) for split in SPLITS for image_id in split_ids[split]]
    with ThreadPoolExecutor(max_workers=max(1, settings.threads)) as pool:
        results = list(tqdm(
            pool.map(lambda job: dataset.read_record(*job, require_mask=job[0] in PIXEL_LABELED), jobs),
            total=len(jobs), desc="prepare_data: checking images", unit="img", mininterval=1.0,
        ))
    records: dict[str, list[ImageRecord]] = {split: [] for split in SPLITS}
    problems: list[Problem] = []
    for (split, _), record in zip(jobs, results):
        if record.problems:
            problems.extend(record.problems)
        else:
            records[split].append(record)
    return records, problems


def run(settings: PrepareSettings, manifest_path: str | Path) -> dict:
    """Write the manifest JSON; stop with every problem listed unless ``on_error`` is ``skip``."""
    records, problems = scan(settings)
    if problems and settings.on_error == "strict":
        listing = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise DatasetError(
            f"{len(problems)} bad input(s) in {settings.root} (set data.on_error: skip to leave them out):\n{listing}{more}"
        )
    for problem in problems:
        log.warning("skipped %s", problem)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "code_version": code_version(),
        "root": str(Path(settings.root).resolve()),
        "captions": str(Path(settings.captions).resolve()) if settings.captions else None,
        "classes": list(settings.classes),
        "stuff_classes": list(settings.stuff_classes),
        "counts": {split: len(items) for split, items in records.items()},
        "splits": {
            split: [
                {"id": r.image_id, "height": r.height, "width": r.width, "labels": r.labels,
                 "label_source": r.label_source, "mask": r.mask}
                for r in items
            ]
            for split, items in records.items()
        },
        "skipped": [{"split": p.split, "id": p.image_id, "file": p.file, "reason": p.reason} for p in problems],
    }
    write_json(manifest_path, manifest)
    log.info("manifest: %s images kept, %d skipped -> %s", manifest["counts"], len(problems), manifest_path)
    return manifest
