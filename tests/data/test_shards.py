import pytest

from clims_core.data.shards import shard_ids


def test_shards_are_balanced_disjoint_and_cover_the_list():
    ids = [f"img{i}" for i in range(10)]
    parts = [shard_ids(ids, shard, 3) for shard in range(3)]
    assert [len(part) for part in parts] == [4, 3, 3]
    assert sorted(sum(parts, [])) == sorted(ids) and len(set(sum(parts, []))) == len(ids)
    assert shard_ids(ids, 0, 1) == ids


@pytest.mark.parametrize("shard, shards", [(3, 3), (-1, 2)])
def test_shard_outside_the_range_is_an_error(shard, shards):
    with pytest.raises(ValueError, match="outside"):
        shard_ids(["a", "b"], shard, shards)
