"""The manifest: what every later stage knows of the dataset (ids, sizes, multi-hot labels per split, skipped inputs).

Written by ``prepare_data`` as JSON, so the dataset folder is scanned and checked once and never again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
SPLITS = ("train_aug", "train", "val")


@dataclass(frozen=True)
class Manifest:
    """A loaded manifest; ``root`` is the dataset folder the ids live in."""

    root: Path
    classes: list[str]
    stuff_classes: list[str]
    splits: dict[str, list[dict[str, Any]]]
    skipped: list[dict[str, str]]
    captions: Path | None

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path}: manifest schema_version {data.get('schema_version')} (expected {SCHEMA_VERSION}); rerun prepare_data")
        return cls(
            root=Path(data["root"]),
            classes=data["classes"],
            stuff_classes=data["stuff_classes"],
            splits=data["splits"],
            skipped=data["skipped"],
            captions=Path(data["captions"]) if data.get("captions") else None,
        )

    def ids(self, split: str) -> list[str]:
        return [item["id"] for item in self.splits[split]]

    def labels(self, split: str) -> np.ndarray:
        """Multi-hot labels as an ``N x C`` float32 array, in split order."""
        return np.asarray([item["labels"] for item in self.splits[split]], dtype=np.float32).reshape(-1, len(self.classes))

    def image_path(self, image_id: str) -> Path:
        return self.root / "JPEGImages" / f"{image_id}.jpg"

    def mask_path(self, split: str, image_id: str) -> Path | None:
        for item in self.splits[split]:
            if item["id"] == image_id:
                return self.root / item["mask"] if item["mask"] else None
        raise KeyError(f"{image_id} is not in split {split}")
