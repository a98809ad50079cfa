"""How a split's ids are dealt to parallel jobs (make_cams and the per-image refiners shard the same way)."""

from __future__ import annotations


def check_shard(shard: int, shards: int) -> None:
    """``shard`` is one of ``shards`` (the settings of every sharded stage check this before any work)."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} outside 0..{shards - 1}")


def shard_ids(ids: list[str], shard: int, shards: int) -> list[str]:
    """Every ``shards``-th id from ``shard`` on: balanced, and the union of all shards is the list, in order once
    interleaved again (``clims_core.refine.mask_folder.merge_parts`` inverts it)."""
    check_shard(shard, shards)
    return ids[shard::shards]
