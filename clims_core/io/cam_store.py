"""The CAM store: one HDF5 file per split (or shard) holding every image's class activation maps.

Layout (DESIGN.md, "Artifact formats"): a group ``/<image_id>`` per image with ``keys`` (int16 class indices, 0-based over
the foreground classes), ``cam`` (float16, K x ceil(H/4) x ceil(W/4)) and ``high_res`` (float16, K x H x W). The maps are
chunked one class plane per chunk with gzip + shuffle, so reading one image decompresses only its own planes. Root
attributes record provenance: ``config_json``, ``config_hash``, ``code_version``, ``checkpoint_sha256``, ``created_utc``
and ``schema_version``.

Why HDF5 and not IRNet's pickled ``.npy`` dicts: nothing is unpickled, one file per split instead of 10k small files,
float16 + gzip keeps a store at a fraction of float32 ``.npy``, and a reader can be handed to DataLoader workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from clims_core.io.atomic import atomic_path
from clims_core.tags import canonical_json
from clims_core.version import code_version

SCHEMA_VERSION = 1
# gzip level 1, measured by bench/bench_cam_store.py on smooth synthetic CAMs: shuffle does most of the work. Level 1
# gives 16% of float32 .npy (VOC size) at ~12 ms written per image; level 4 gives 15% at ~14 ms, 6 gives 14.8% at
# ~21 ms, 9 gives 14.6% at ~75 ms. Reading costs the same at every level. One point of size is not worth slower writes.
DEFAULT_COMPRESSION_LEVEL = 1
STRIDE = 4  # ``cam`` is the stride-4 map: ceil(H/4) x ceil(W/4)


def config_hash(config: dict[str, Any]) -> str:
    """Full SHA-256 of the canonical JSON of a config section (shards of one run share it)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def check_cam_classes(store_path: str | Path, image_id: str, keys: np.ndarray, labels: np.ndarray,
                      classes: list[str]) -> None:
    """The stored CAMs are for the image's labelled classes (else the store comes from another dataset)."""
    labelled = np.flatnonzero(np.asarray(labels))
    if sorted(keys.tolist()) != labelled.tolist():
        names = [classes[k] if k < len(classes) else f"#{k}" for k in keys.tolist()]
        raise ValueError(f"{store_path}: image {image_id!r} has CAMs for {names} but the manifest labels it "
                         f"{[classes[k] for k in labelled]} (a CAM store of another dataset?)")


def stride_shape(height: int, width: int) -> tuple[int, int]:
    """Spatial size of the stride-4 ``cam`` map of an ``height x width`` image."""
    return math.ceil(height / STRIDE), math.ceil(width / STRIDE)


def _float_maps(image_id: str, name: str, maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps)
    if maps.ndim != 3 or not np.issubdtype(maps.dtype, np.floating):
        raise ValueError(f"image {image_id!r}: {name} must be a floating K x H x W array, got {maps.dtype} {maps.shape}")
    with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
        half = maps.astype(np.float16)
    if half.size and (half.view(np.uint16) & 0x7FFF).max() >= 0x7C00:  # exponent all ones: inf or NaN (20x isfinite)
        raise ValueError(f"image {image_id!r}: {name} has values that are NaN, infinite or beyond float16's range")
    return half


class CamStoreWriter:
    """Writes a CAM store atomically: a ``<path>.tmp-XXXX`` beside the final path, moved into place on a clean close.

    Use as a context manager. An exception inside the ``with`` deletes the temporary, so no partial store is ever at the
    final path (a rerun starts from scratch, never from a truncated file).
    """

    def __init__(self, path: str | os.PathLike, config: dict[str, Any], checkpoint_sha256: str,
                 compression_level: int = DEFAULT_COMPRESSION_LEVEL):
        if not 0 <= compression_level <= 9:
            raise ValueError(f"{path}: gzip compression_level must be 0..9, got {compression_level}")
        self.path = Path(path)
        self.config = config
        self.checkpoint_sha256 = checkpoint_sha256
        self.compression_level = compression_level
        self._stack: contextlib.ExitStack | None = None
        self._file: h5py.File | None = None

    def __enter__(self) -> "CamStoreWriter":
        stack = contextlib.ExitStack()
        tmp = stack.enter_context(atomic_path(self.path))
        try:
            self._file = h5py.File(tmp, "w")
            self._file.attrs.update(self.root_attrs())
        except BaseException:
            if self._file is not None:
                self._file.close()
            self._file = None
            stack.__exit__(*sys.exc_info())
            raise
        self._stack = stack
        return self

    def root_attrs(self) -> dict[str, Any]:
        """Provenance written at the root: what made these CAMs, from which checkpoint, with which code, when."""
        return {
            "config_json": canonical_json(self.config),
            "config_hash": config_hash(self.config),
            "code_version": code_version(),
            "checkpoint_sha256": self.checkpoint_sha256,
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "schema_version": SCHEMA_VERSION,
        }

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        stack, handle = self._stack, self._file
        if stack is None or handle is None:
            raise RuntimeError(f"{self.path}: CamStoreWriter is not open")
        self._stack = self._file = None
        try:
            handle.close()  # HDF5 must be closed (flushed) before the file is moved into place
        except BaseException:
            stack.__exit__(*sys.exc_info())  # deletes the temporary
            raise
        return bool(stack.__exit__(exc_type, exc, tb))  # os.replace on success, delete the temporary on error

    def write(self, image_id: str, keys: np.ndarray, cam: np.ndarray, high_res: np.ndarray) -> None:
        """Store one image's CAMs; shapes and dtypes are checked so a bad map fails here, not in a later stage."""
        keys = np.asarray(keys)
        if keys.ndim != 1 or (keys.size and not np.issubdtype(keys.dtype, np.integer)):
            raise ValueError(f"image {image_id!r}: keys must be a 1-D integer array of class indices, got {keys.dtype} {keys.shape}")
        if keys.size and (keys.min() < 0 or keys.max() > np.iinfo(np.int16).max or len(np.unique(keys)) != keys.size):
            raise ValueError(f"image {image_id!r}: keys must be distinct 0-based class indices, got {keys.tolist()}")
        cam = _float_maps(image_id, "cam", cam)
        high_res = _float_maps(image_id, "high_res", high_res)
        k = keys.size
        height, width = high_res.shape[1:]
        if cam.shape[0] != k or high_res.shape[0] != k:
            raise ValueError(f"image {image_id!r}: {k} keys but cam has {cam.shape[0]} and high_res {high_res.shape[0]} planes")
        if cam.shape[1:] != stride_shape(height, width):
            raise ValueError(f"image {image_id!r}: cam is {cam.shape[1]} x {cam.shape[2]}, expected "
                             f"ceil(H/4) x ceil(W/4) = {stride_shape(height, width)} for high_res {height} x {width}")
        if not image_id or "/" in image_id or image_id in (".", ".."):
            raise ValueError(f"image id {image_id!r} cannot name an HDF5 group (empty, '.', '..' or containing '/')")
        if self._file is None:
            raise RuntimeError(f"{self.path}: CamStoreWriter is not open (use it in a `with` block)")
        if image_id in self._file:
            raise ValueError(f"image {image_id!r} is written twice to {self.path}")
        group = self._file.create_group(image_id)
        group.create_dataset("keys", data=keys.astype(np.int16))
        for name, maps in (("cam", cam), ("high_res", high_res)):
            if k == 0:  # HDF5 cannot chunk an empty dataset; an image without classes has nothing to compress
                group.create_dataset(name, data=maps)
            else:
                group.create_dataset(name, data=maps, chunks=(1, *maps.shape[1:]), compression="gzip",
                                     compression_opts=self.compression_level, shuffle=True)


class CamStore:
    """Reads a CAM store. Opens lazily and re-opens in a forked process, so one instance can go to DataLoader workers.

    Pickling drops the HDF5 handle (a worker started by spawn opens its own); a worker started by fork sees a handle
    opened by another process id and opens its own too (HDF5 handles must not be shared across processes).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def _h5(self) -> h5py.File:
        if self._file is not None and self._pid == os.getpid():
            return self._file
        self._file = None  # a handle inherited through fork belongs to the parent: open our own
        if not self.path.is_file():
            raise FileNotFoundError(f"CAM store {self.path} does not exist (run make_cams first)")
        try:
            handle = h5py.File(self.path, "r")
        except OSError as error:
            raise ValueError(f"{self.path}: not a readable HDF5 CAM store ({error})") from error
        version = handle.attrs.get("schema_version")
        if version != SCHEMA_VERSION:
            handle.close()
            raise ValueError(f"{self.path}: CAM store schema_version {version} (expected {SCHEMA_VERSION}); rerun make_cams")
        self._file, self._pid = handle, os.getpid()
        return handle

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_file": None, "_pid": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def ids(self) -> list[str]:
        return list(self._h5().keys())

    def __contains__(self, image_id: object) -> bool:
        return isinstance(image_id, str) and image_id in self._h5()

    def __len__(self) -> int:
        return len(self._h5())

    def read(self, image_id: str, high_res: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, cams)``: int64 0-based class indices and float32 K x H x W (``high_res``) or stride-4 maps."""
        handle = self._h5()
        if image_id not in handle:
            raise KeyError(f"{self.path}: no image {image_id!r} in the CAM store")
        group = handle[image_id]
        try:
            keys = group["keys"][()].astype(np.int64)
            cams = half_to_float32(group["high_res" if high_res else "cam"][()])
        except (KeyError, OSError, ValueError) as error:
            raise ValueError(f"{self.path}: image {image_id!r} is damaged or incomplete ({error})") from error
        return keys, cams

    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes as plain Python, plus ``config``: ``config_json`` parsed."""
        attrs = {key: _plain(value) for key, value in self._h5().attrs.items()}
        attrs["config"] = json.loads(attrs["config_json"])
        return attrs

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = self._pid = None

    def __enter__(self) -> "CamStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def half_to_float32(half: np.ndarray) -> np.ndarray:
    """Exact float16 -> float32 by bit arithmetic, ~4x faster than numpy's cast (scalar code in numpy: ~1 ms of a
    VOC image's ~4 ms read). Move the exponent and mantissa into float32's bit positions and rescale by 2**112 (the
    exponent bias difference; the float multiply also normalises float16 subnormals), then put the sign back."""
    bits = half.view(np.uint16).astype(np.uint32)
    sign = (bits & 0x8000) << 16
    bits &= 0x7FFF
    if bits.size and bits.max() >= 0x7C00:
        raise ValueError("CAMs hold infinite or NaN values (a store written by CamStoreWriter never does)")
    bits <<= 13
    out = bits.view(np.float32)
    out *= np.float32(2.0**112)
    bits |= sign
    return out


def _plain(value: Any) -> Any:
    """HDF5 attribute values as plain Python (numpy scalars and bytes become int/float/str)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
