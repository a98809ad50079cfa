"""Per-image work over a process pool (the CRF stages), and the checks every refinement stage makes first.

denseCRF runs in C++ on one core per call, so images go to ``processes`` worker processes; each worker opens the CAM
store itself (a :class:`~clims_core.io.cam_store.CamStore` re-opens after fork or unpickling), writes its masks and
returns only pixel counts. With one process everything runs in this process, with no pool to start.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from clims_core.data.manifest import Manifest
from clims_core.io.cam_store import CamStore
from clims_core.refine.mask_folder import STAT_KEYS, add_stats


def load_rgb(path: str | Path) -> np.ndarray:
    """An image as a writable, C-contiguous H x W x 3 uint8 array (what pydensecrf needs)."""
    with Image.open(path) as image:
        return np.array(image.convert("RGB"), dtype=np.uint8, order="C")


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


def check_keys(store_path: Path, image_id: str, keys: np.ndarray, labels: np.ndarray, classes: list[str]) -> None:
    """The stored CAMs are for the image's labelled classes (else the store comes from another dataset)."""
    labelled = np.flatnonzero(labels)
    if sorted(keys.tolist()) != labelled.tolist():
        raise ValueError(f"{store_path}: image {image_id!r} has CAMs for classes {keys.tolist()} but the manifest "
                         f"labels it {[classes[k] for k in labelled]} (a CAM store of another dataset?)")


def image_and_cams(manifest: Manifest, store: CamStore, image_id: str,
                   labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image (H x W x 3) with its stored CAMs, checked to match it in size and labelled classes."""
    image = load_rgb(manifest.image_path(image_id))
    keys, cams = store.read(image_id)
    if cams.shape[1:] != image.shape[:2]:
        raise ValueError(f"{store.path}: image {image_id!r} has CAMs of {cams.shape[1]} x {cams.shape[2]} px "
                         f"but the image is {image.shape[0]} x {image.shape[1]}")
    check_keys(store.path, image_id, keys, labels, manifest.classes)
    return image, keys, cams


def _chunks(n_items: int, processes: int) -> int:
    return max(1, min(16, n_items // (8 * processes)))


_WORK: Callable[[str], dict[str, int]] | None = None  # a worker process's job, installed once when it starts


def _install(work: Callable[[str], dict[str, int]]) -> None:
    global _WORK
    _WORK = work


def _call(image_id: str) -> dict[str, int]:
    assert _WORK is not None
    return _WORK(image_id)


def run_per_image(work: Callable[[str], dict[str, int]], ids: list[str], processes: int, desc: str) -> dict[str, int]:
    """Call ``work(image_id)`` for every id (in ``processes`` processes) and sum the pixel counts it returns.

    The job goes to each worker once (pool initializer), not with every batch of ids: it may carry the split's labels.
    """
    total = {key: 0 for key in STAT_KEYS}
    processes = max(1, min(processes, len(ids)))
    if processes == 1:
        results: Iterable[dict[str, int]] = map(work, ids)
        return _collect(results, len(ids), desc, total)
    # started before the progress bar's monitor thread exists
    with multiprocessing.get_context().Pool(processes, initializer=_install, initargs=(work,)) as pool:
        return _collect(pool.imap(_call, ids, chunksize=_chunks(len(ids), processes)), len(ids), desc, total)


def _collect(results: Iterator[dict[str, int]] | Iterable[dict[str, int]], n: int, desc: str,
             total: dict[str, int]) -> dict[str, int]:
    with tqdm(total=n, desc=desc, unit="img", mininterval=2.0) as bar:
        for stats in results:
            total = add_stats(total, stats)
            bar.update()
    return total
