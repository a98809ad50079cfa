"""The pseudo-mask folder: what the refiners write and the segmentation stages read.

Layout: ``<dir>/masks/<id>.png`` (VOC palette PNGs: 0 background, 1..C classes, 255 ignore) and ``<dir>/index.json``,
written last and atomically::

    {"split": "train_aug", "ids": [...], "masks": {"<id>": "masks/<id>.png"}, "classes": [...], "stats": {...},
     ...provenance}

``stats`` counts pixels (``pixels``, ``background``, ``foreground``, ``ignored``) over every mask. A sharded run
writes the PNGs of shard ``i`` of ``n`` into the same folder and a *part* (the index of its ids, with ``shard`` and
``shards``); :func:`merge_parts` joins the parts into the index an unsharded run writes, byte for byte (no timestamps
are recorded, so equal inputs give equal files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clims_core.io.atomic import write_json
from clims_core.io.masks import IGNORE_INDEX, load_mask

INDEX_NAME = "index.json"
MASK_DIR = "masks"
REQUIRED = ("split", "ids", "masks", "classes")
STAT_KEYS = ("pixels", "background", "foreground", "ignored")


def mask_relpath(image_id: str) -> str:
    """Where an image's mask lives, relative to the folder (the ``masks`` entry of the index)."""
    if not image_id or "/" in image_id or image_id in (".", ".."):
        raise ValueError(f"image id {image_id!r} cannot name a mask file")
    return f"{MASK_DIR}/{image_id}.png"


def mask_stats(mask: np.ndarray) -> dict[str, int]:
    """Pixel counts of one mask (summed into the index's ``stats``)."""
    ignored = int((mask == IGNORE_INDEX).sum())
    background = int((mask == 0).sum())
    return {"pixels": int(mask.size), "background": background, "foreground": int(mask.size) - background - ignored,
            "ignored": ignored}


def add_stats(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    return {key: total.get(key, 0) + more.get(key, 0) for key in STAT_KEYS}


def index_document(split: str, ids: list[str], classes: list[str], stats: dict[str, int],
                   shard: int = 0, shards: int = 1, **provenance: Any) -> dict[str, Any]:
    """The index (``shards == 1``) or a shard's part of it."""
    document = {"split": split, "ids": list(ids), "masks": {i: mask_relpath(i) for i in ids},
                "classes": list(classes), "stats": {key: int(stats.get(key, 0)) for key in STAT_KEYS}, **provenance}
    if shards > 1:
        document |= {"shard": shard, "shards": shards}
    return document


def write_index(path: str | Path, document: dict[str, Any]) -> None:
    write_json(path, document)


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable mask index ({error})") from None
    missing = [key for key in REQUIRED if not isinstance(document, dict) or key not in document]
    if missing:
        raise ValueError(f"{path}: mask index lacks {missing}; expected a JSON object with {list(REQUIRED)}")
    return document


def merge_parts(part_paths: list[str | Path], index_path: str | Path) -> dict[str, Any]:
    """Join shard parts ``1..n of n`` into the folder's index, ids in the unsharded order (``ids[shard::shards]``
    interleaved back); checks that the parts come from one run and that every mask file is there."""
    if not part_paths:
        raise ValueError("merge: no shard parts given")
    parts = [(Path(p), _read(Path(p))) for p in part_paths]
    n = len(parts)
    by_shard: dict[int, dict[str, Any]] = {}
    first_path, first = parts[0]
    common = {key: value for key, value in first.items() if key not in ("ids", "masks", "stats", "shard", "shards")}
    for path, part in parts:
        if part.get("shards") != n or part.get("shard") not in range(n) or part["shard"] in by_shard:
            raise ValueError(f"{path}: part of shard {part.get('shard')} of {part.get('shards')}, but {n} distinct "
                             f"shards 0..{n - 1} were given")
        rest = {key: value for key, value in part.items() if key not in ("ids", "masks", "stats", "shard", "shards")}
        if rest != common:
            differing = sorted(key for key in set(rest) | set(common) if rest.get(key) != common.get(key))
            raise ValueError(f"{path} and {first_path} differ in {differing}: the parts come from different runs")
        by_shard[part["shard"]] = part
    lengths = [len(by_shard[s]["ids"]) for s in range(n)]
    if any(lengths[s] < lengths[s + 1] for s in range(n - 1)) or lengths[0] - lengths[-1] > 1:
        raise ValueError(f"merge: shard sizes {lengths} cannot come from one id list split as ids[shard::{n}]")
    total = sum(lengths)
    ids = [by_shard[i % n]["ids"][i // n] for i in range(total)]
    if len(set(ids)) != total:
        raise ValueError("merge: an image id appears in more than one shard part")
    stats: dict[str, int] = {}
    for s in range(n):
        stats = add_stats(stats, by_shard[s]["stats"])
    folder = Path(index_path).parent
    absent = [i for i in ids if not (folder / mask_relpath(i)).is_file()]
    if absent:
        raise ValueError(f"merge: {len(absent)} masks listed by the parts are missing in {folder / MASK_DIR}, "
                         f"e.g. {absent[:3]}")
    document = index_document(common.pop("split"), ids, common.pop("classes"), stats, **common)
    write_index(index_path, document)
    return document


@dataclass(frozen=True)
class MaskFolder:
    """A pseudo-mask folder opened through its index (what a segmentation stage reads)."""

    root: Path
    split: str
    ids: list[str]
    classes: list[str]
    index: dict[str, Any]

    @classmethod
    def load(cls, index_path: str | Path) -> "MaskFolder":
        path = Path(index_path)
        document = _read(path)
        if "shard" in document:
            raise ValueError(f"{path}: a shard's part, not a folder index (merge the parts first)")
        unlisted = [i for i in document["ids"] if i not in document["masks"]]
        if unlisted:
            raise ValueError(f"{path}: ids without a mask entry, e.g. {unlisted[:3]}")
        return cls(path.parent, document["split"], list(document["ids"]), list(document["classes"]), document)

    def mask_path(self, image_id: str) -> Path:
        try:
            return self.root / self.index["masks"][image_id]
        except KeyError:
            raise KeyError(f"{self.root / INDEX_NAME}: no mask for image {image_id!r}") from None

    def load_mask(self, image_id: str) -> np.ndarray:
        return load_mask(self.mask_path(image_id))
