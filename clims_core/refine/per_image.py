"""Per-image work over a process pool (the CRF stages), and the checks every refinement stage makes first.

denseCRF runs in C++ on one core per call, so images go to ``processes`` worker processes; each worker opens the CAM
store itself (a :class:`~clims_core.io.cam_store.CamStore` re-opens after fork or unpickling), writes its masks and
returns only pixel counts. With one process everything runs in this process, with no pool to start.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from clims_core.data.manifest import Manifest
from clims_core.data.shards import check_shard, shard_ids
from clims_core.io.cam_store import CamStore, check_cam_classes
from clims_core.io.images import read_rgb
from clims_core.io.masks import save_mask
from clims_core.refine.mask_folder import STAT_KEYS, add_stats, index_document, mask_relpath, mask_stats, write_index
from clims_core.version import code_version


def split_ids(manifest: Manifest, split: str) -> list[str]:
    if split not in manifest.splits:
        raise ValueError(f"split {split!r} is not in the manifest (splits: {list(manifest.splits)})")
    return manifest.ids(split)


def check_store_covers(store: CamStore, ids: list[str], split: str) -> None:
    """Every image to refine has CAMs, or one error lists those without (before any image is processed)."""
    stored = set(store.ids())
    missing = [i for i in ids if i not in stored]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise ValueError(f"{store.path}: {len(missing)} of {len(ids)} images of split {split} have no CAMs: {shown} "
                         f"(make the CAMs of split {split} with make_cams)")


def image_and_cams(manifest: Manifest, store: CamStore, image_id: str,
                   labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image (H x W x 3) with its stored CAMs, checked to match it in size and labelled classes."""
    image = read_rgb(manifest.image_path(image_id))
    keys, cams = store.read(image_id)
    if cams.shape[1:] != image.shape[:2]:
        raise ValueError(f"{store.path}: image {image_id!r} has CAMs of {cams.shape[1]} x {cams.shape[2]} px "
                         f"but the image is {image.shape[0]} x {image.shape[1]}")
    check_cam_classes(store.path, image_id, keys, labels, manifest.classes)
    return image, keys, cams


@dataclass(frozen=True)
class ShardInputs:
    """What a refinement stage works on: this shard's ids, the split's labels and the CAM store's provenance."""

    manifest: Manifest
    split: str
    ids: list[str]
    labels: dict[str, np.ndarray]
    cam_store: dict[str, Any]
    shard: int
    shards: int


def open_shard(manifest_path: str | Path, store_path: str | Path, split: str, shard: int,
               shards: int) -> ShardInputs:
    """The shard's inputs, with the store checked to cover every one of its images (before any image is processed)."""
    manifest = Manifest.load(manifest_path)
    all_ids = split_ids(manifest, split)
    ids = shard_ids(all_ids, shard, shards)
    with CamStore(store_path) as store:
        check_store_covers(store, ids, split)
        provenance = {key: store.attrs[key] for key in ("config_hash", "checkpoint_sha256")}
    return ShardInputs(manifest, split, ids, dict(zip(all_ids, manifest.labels(split))), provenance, shard, shards)


def write_shard_index(inputs: ShardInputs, stats: dict[str, int], index_path: str | Path, config: dict[str, Any],
                      **provenance: Any) -> None:
    """The mask folder's index (or the shard's part of it), written after every mask: its presence means complete."""
    write_index(index_path, index_document(inputs.split, inputs.ids, inputs.manifest.classes, stats, inputs.shard,
                                           inputs.shards, config=config, cam_store=inputs.cam_store,
                                           code_version=code_version(), **provenance))


MaskFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (image, cams, keys) -> mask


@dataclass(frozen=True)
class CamMaskJob:
    """One image -> ``to_mask(image, cams, keys)`` saved as its mask PNG; returns the mask's pixel counts.

    Picklable (runs in the pool's workers): ``to_mask`` is a ``functools.partial`` of a module-level function or a
    small frozen dataclass. ``high_res=False`` reads the stride-4 CAMs (the random walk's), which have no image size.
    """

    manifest: Manifest
    store: CamStore
    folder: Path
    labels: dict[str, np.ndarray]
    to_mask: MaskFn
    high_res: bool = True

    def __call__(self, image_id: str) -> dict[str, int]:
        if self.high_res:
            image, keys, cams = image_and_cams(self.manifest, self.store, image_id, self.labels[image_id])
        else:
            image = read_rgb(self.manifest.image_path(image_id))
            keys, cams = self.store.read(image_id, high_res=False)
            check_cam_classes(self.store.path, image_id, keys, self.labels[image_id], self.manifest.classes)
        mask = self.to_mask(image, cams, keys)
        save_mask(self.folder / mask_relpath(image_id), mask)
        return mask_stats(mask)


@dataclass(frozen=True)
class MaskRun:
    """What a refinement stage's run did: images, seconds and the summed pixel counts of their masks."""

    images: int
    seconds: float
    stats: dict[str, int]

    def summary(self) -> dict[str, Any]:
        return {"images": self.images, "seconds": self.seconds, "stats": self.stats}

    @property
    def rate(self) -> float:
        return self.images / max(self.seconds, 1e-9)


RUN_ONLY_FIELDS = ("shard", "shards", "processes", "device", "precision", "threads")  # none changes a mask


@dataclass(frozen=True, kw_only=True)
class ShardSettings:
    """Which images a refinement job makes masks of: shard ``shard`` of ``shards`` of ``split`` (``ids[shard::shards]``,
    as ``make_cams`` deals them); each shard writes a part of the mask folder's index that ``merge_masks`` joins."""

    split: str = "train_aug"
    shard: int = 0
    shards: int = 1

    def __post_init__(self) -> None:
        check_shard(self.shard, self.shards)

    def section(self) -> dict[str, Any]:
        """What the masks depend on (recorded in the index): every field but where and how fast the job runs."""
        return {key: value for key, value in asdict(self).items() if key not in RUN_ONLY_FIELDS}


def masks_from_cams(to_mask: MaskFn, stage: str, settings: ShardSettings, manifest_path: str | Path,
                    store_path: str | Path, folder: str | Path, index_path: str | Path, processes: int = 1,
                    high_res: bool = True, **provenance: Any) -> MaskRun:
    """Every image of the shard through ``to_mask`` into ``folder`` (``processes`` workers); the index last.

    The store is checked to cover the shard before any image is processed."""
    start = time.perf_counter()
    inputs = open_shard(manifest_path, store_path, settings.split, settings.shard, settings.shards)
    job = CamMaskJob(inputs.manifest, CamStore(store_path), Path(folder), inputs.labels, to_mask, high_res)
    stats = run_per_image(job, inputs.ids, processes, f"{stage}[{inputs.shard + 1}/{inputs.shards}]")
    write_shard_index(inputs, stats, index_path, settings.section(), **provenance)
    return MaskRun(len(inputs.ids), time.perf_counter() - start, stats)


def _chunks(n_items: int, processes: int) -> int:
    return max(1, min(16, n_items // (8 * processes)))


Counts = TypeVar("Counts")
_WORK: Callable[[str], Any] | None = None  # a worker process's job, installed once when it starts


def _install(work: Callable[[str], Any]) -> None:
    global _WORK
    _WORK = work


def _call(image_id: str) -> Any:
    assert _WORK is not None
    return _WORK(image_id)


def run_per_image(work: Callable[[str], Counts], ids: list[str], processes: int, desc: str,
                  total: Counts | None = None, add: Callable[[Counts, Counts], Counts] = add_stats) -> Counts:
    """Call ``work(image_id)`` for every id (in ``processes`` processes) and sum what it returns with ``add``: by
    default a mask's pixel counts (``total`` starts at zero counts).

    The job goes to each worker once (pool initializer), not with every batch of ids: it may carry the split's labels.
    """
    if total is None:
        total = {key: 0 for key in STAT_KEYS}
    processes = max(1, min(processes, len(ids)))
    if processes == 1:
        return _collect(map(work, ids), len(ids), desc, total, add)
    # started before the progress bar's monitor thread exists
    with multiprocessing.get_context().Pool(processes, initializer=_install, initargs=(work,)) as pool:
        return _collect(pool.imap(_call, ids, chunksize=_chunks(len(ids), processes)), len(ids), desc, total, add)


def _collect(results: Iterator[Counts] | Iterable[Counts], n: int, desc: str, total: Counts,
             add: Callable[[Counts, Counts], Counts]) -> Counts:
    with tqdm(total=n, desc=desc, unit="img", mininterval=2.0) as bar:
        for counts in results:
            total = add(total, counts)
            bar.update()
    return total
