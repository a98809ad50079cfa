"""Stage ``merge_cams``: join the shard stores of ``cams.shards: N`` into the split's one CAM store.

Groups are copied with HDF5's own ``copy``, which moves the compressed chunks as they are (no decompress/recompress),
so the merged store keeps each dataset's chunking, compression and bytes. The shards must come from one run (same
``config_hash`` and ``checkpoint_sha256``) and hold disjoint ids; anything else is an error naming the shards.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import h5py
from tqdm import tqdm

from clims_core.io.atomic import atomic_path
from clims_core.io.cam_store import CamStore

log = logging.getLogger(__name__)

MUST_AGREE = ("config_hash", "checkpoint_sha256", "schema_version")


def merged_attrs(shards: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """The shards' common root attributes plus ``shards``; ``created_utc`` is the latest shard's."""
    first_path, first = shards[0]
    for path, attrs in shards[1:]:
        for key in MUST_AGREE:
            if attrs.get(key) != first.get(key):
                raise ValueError(f"merge_cams: {path} has {key} {attrs.get(key)!r} but {first_path} has "
                                 f"{first.get(key)!r}; the shards come from different runs")
    merged = {key: value for key, value in first.items() if key != "config"}
    merged["created_utc"] = max(attrs["created_utc"] for _, attrs in shards)
    versions = sorted({attrs["code_version"] for _, attrs in shards})
    merged["code_version"] = versions[0] if len(versions) == 1 else "; ".join(versions)
    merged["shards"] = len(shards)
    return merged


def run(shard_paths: list[str | os.PathLike], out_path: str | os.PathLike) -> dict[str, Any]:
    """Merge the shard stores into ``out_path`` atomically; returns ``{"images", "shards"}``."""
    if not shard_paths:
        raise ValueError("merge_cams: no shard stores given")
    shards = [CamStore(path) for path in shard_paths]
    owner: dict[str, Path] = {}
    for shard in shards:
        for image_id in shard.ids():
            if image_id in owner:
                raise ValueError(f"merge_cams: image {image_id!r} is in both {owner[image_id]} and {shard.path}")
            owner[image_id] = shard.path
    attrs = merged_attrs([(shard.path, shard.attrs) for shard in shards])
    for shard in shards:
        shard.close()
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as out:
        out.attrs.update(attrs)
        progress = tqdm(total=len(owner), desc="merge_cams", unit="img", mininterval=2.0)
        for path in (shard.path for shard in shards):
            with h5py.File(path, "r") as source:
                for image_id in source:
                    source.copy(source[image_id], out, name=image_id)
                    progress.update()
        progress.close()
    log.info("merge_cams: %d images from %d shards into %s", len(owner), len(shards), out_path)
    return {"images": len(owner), "shards": len(shards)}
