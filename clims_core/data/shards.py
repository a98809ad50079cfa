"""How a split's ids are dealt to parallel jobs (make_cams and the per-image refiners shard the same way)."""

from __future__ import annotations


def shard_ids(ids: list[str], shard: int, shards: int) -> list[str]:
    """Every ``shards``-th id from ``shard`` on: balanced, and the union of all shards is the list, in order once
    interleaved again (``clims_core.refine.mask_folder.merge_parts`` inverts it)."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} outside 0..{shards - 1}")
    return ids[shard::shards]
