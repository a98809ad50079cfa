"""Synthetic CAM stores for the report tests, built from a world's ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clims_core.data.manifest import Manifest
from clims_core.io.cam_store import CamStoreWriter, stride_shape
from clims_core.io.masks import load_mask


def write_store(path: Path, manifest: Manifest, split: str, keep_rows: dict[str, int] | None = None) -> Path:
    """CAM = 1 on each labelled class's ground truth; with ``keep_rows``, only its first ``keep_rows[id]`` rows."""
    with CamStoreWriter(path, {"method": "test"}, "0" * 64) as writer:
        for item in manifest.splits[split]:
            gt = load_mask(manifest.root / item["mask"])
            keys = np.flatnonzero(item["labels"])
            high = np.stack([(gt == k + 1) for k in keys]).astype(np.float32)
            if keep_rows is not None:
                high[:, keep_rows.get(item["id"], gt.shape[0]):] = 0
            writer.write(item["id"], keys, np.zeros((len(keys), *stride_shape(*gt.shape)), np.float32), high)
    return path
