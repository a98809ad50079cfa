"""merge_cams: the merged store is the union of the shards, byte for byte, with the shards' provenance."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from clims_core.io.cam_store import CamStore, CamStoreWriter, stride_shape
from clims_core.stages.merge_cams import run

CONFIG = {"method": "cam", "shards": 3}


def write_shard(path: Path, ids: list[str], config: dict = CONFIG, sha: str = "1" * 64, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with CamStoreWriter(path, config, sha) as writer:
        for image_id in ids:
            k, h, w = int(rng.integers(1, 4)), int(rng.integers(5, 30)), int(rng.integers(5, 30))
            writer.write(image_id, np.arange(k), rng.random((k, *stride_shape(h, w))), rng.random((k, h, w)))


def datasets(path: Path) -> dict[str, tuple]:
    """Every dataset's storage settings and raw (compressed) chunk bytes."""
    found = {}
    with h5py.File(path, "r") as handle:
        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                raw = [obj.id.read_direct_chunk(obj.id.get_chunk_info(i).chunk_offset)[1]
                       for i in range(obj.id.get_num_chunks())] if obj.chunks else [obj[()].tobytes()]
                found[name] = (obj.dtype, obj.shape, obj.chunks, obj.compression, obj.compression_opts, obj.shuffle, raw)
        handle.visititems(visit)
    return found


def test_merge_is_the_union(tmp_path: Path) -> None:
    shards = [tmp_path / f"shard{i}.h5" for i in range(3)]
    ids = [["a", "b"], ["c"], ["d", "e", "f"]]
    for seed, (path, shard_ids) in enumerate(zip(shards, ids)):
        write_shard(path, shard_ids, seed=seed)
    out = tmp_path / "merged" / "train.h5"
    assert run(shards, out) == {"images": 6, "shards": 3}
    merged = CamStore(out)
    assert sorted(merged.ids()) == list("abcdef")
    expected = {}
    for path in shards:
        expected.update(datasets(path))
        with CamStore(path) as shard:
            for image_id in shard.ids():
                for high_res in (True, False):
                    got, want = merged.read(image_id, high_res), shard.read(image_id, high_res)
                    np.testing.assert_array_equal(got[0], want[0])
                    np.testing.assert_array_equal(got[1], want[1])
    assert datasets(out) == expected  # same chunking, compression and compressed bytes
    attrs, first = merged.attrs, CamStore(shards[0]).attrs
    assert attrs["shards"] == 3
    for key in ("config_json", "config_hash", "checkpoint_sha256", "code_version", "schema_version"):
        assert attrs[key] == first[key]
    assert [p.name for p in out.parent.iterdir()] == ["train.h5"]


@pytest.mark.parametrize("second, message", [
    (dict(ids=["b", "c"]), r"image 'b' is in both .*shard0.h5 and .*shard1.h5"),
    (dict(ids=["c"], config={"method": "cam", "shards": 4}), r"shard1.h5 has config_hash"),
    (dict(ids=["c"], sha="2" * 64), r"shard1.h5 has checkpoint_sha256"),
])
def test_shards_must_be_disjoint_and_from_one_run(tmp_path: Path, second: dict, message: str) -> None:
    write_shard(tmp_path / "shard0.h5", ["a", "b"])
    write_shard(tmp_path / "shard1.h5", **second)
    out = tmp_path / "merged.h5"
    with pytest.raises(ValueError, match=message):
        run([tmp_path / "shard0.h5", tmp_path / "shard1.h5"], out)
    assert not out.exists() and not list(tmp_path.glob("merged.h5.tmp-*"))


def test_missing_shard_named(tmp_path: Path) -> None:
    write_shard(tmp_path / "shard0.h5", ["a"])
    with pytest.raises(FileNotFoundError, match="shard1.h5"):
        run([tmp_path / "shard0.h5", tmp_path / "shard1.h5"], tmp_path / "merged.h5")
