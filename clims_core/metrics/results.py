"""What the evaluation stages share around the metrics: rounding for result files, the confounder pairs of the config,
and the stuff masks they are counted on."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from tqdm import tqdm

from clims_core.data.manifest import Manifest
from clims_core.io.masks import load_mask


def percent(value: float) -> float | None:
    """Percent rounded for reading; NaN (undefined) becomes null, since JSON has no NaN."""
    return None if np.isnan(value) else round(100 * float(value), 4)


def fraction(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)


def tsv_cell(value: float | int | None) -> str:
    return "nan" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def confounder_pairs(manifest: Manifest, confounders: dict[str, str]) -> list[tuple[int, int]]:
    """``eval.confounders`` names as 1-based (class id, stuff id) pairs, in the config's order."""
    pairs = []
    for cls, stuff in confounders.items():
        if cls not in manifest.classes:
            raise ValueError(f"eval.confounders: unknown class {cls!r} (classes: {manifest.classes})")
        if stuff not in manifest.stuff_classes:
            raise ValueError(f"eval.confounders: unknown stuff {stuff!r} for class {cls!r} "
                             f"(stuff: {manifest.stuff_classes})")
        pairs.append((manifest.classes.index(cls) + 1, manifest.stuff_classes.index(stuff) + 1))
    return pairs


def load_ground_truth(manifest: Manifest, item: dict[str, Any], split: str) -> np.ndarray:
    """The manifest item's ground-truth mask (an item of a pixel-labelled split without one is an error)."""
    if not item.get("mask"):
        raise ValueError(f"image {item['id']!r} of split {split} has no ground-truth mask in the manifest")
    return load_mask(manifest.root / item["mask"])


def load_stuff_mask(stuff_dir: Path, image_id: str) -> np.ndarray:
    path = stuff_dir / f"{image_id}.png"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: stuff mask missing (needed for eval.confounders)")
    return load_mask(path)


class _Addable(Protocol):
    def add(self, other: Any) -> None: ...


Counts = TypeVar("Counts", bound=_Addable)


def sum_over_images(count: Callable[[dict[str, Any]], Counts], items: Iterable[dict[str, Any]], total: Counts,
                    threads: int, desc: str) -> Counts:
    """``total`` plus ``count(item)`` of every manifest item, counted in ``threads`` threads (image decoding and numpy
    release the GIL), with a progress bar; on an error the rest is cancelled, not waited for."""
    items = list(items)
    progress = tqdm(total=len(items), desc=desc, unit="img", mininterval=2.0)
    pool = ThreadPoolExecutor(max_workers=max(1, threads))
    try:
        for counts in pool.map(count, items):
            total.add(counts)
            progress.update()
    finally:
        pool.shutdown(cancel_futures=True)
        progress.close()
    return total
