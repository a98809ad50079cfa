"""The HDF5 CAM store: round trip, storage settings, atomic write, provenance, errors, DataLoader workers, pickling."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from clims_core.io.cam_store import (DEFAULT_COMPRESSION_LEVEL, SCHEMA_VERSION, CamStore, CamStoreWriter, config_hash,
                                     half_to_float32)
from clims_core.version import code_version

CONFIG = {"method": "clims", "scales": [1.0, 0.5, 1.5, 2.0]}
SHA = "ab" * 32


def fake_cams(rng: np.random.Generator, k: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keys = np.sort(rng.choice(6, k, replace=False))
    high = rng.random((k, height, width), dtype=np.float32)
    cam = rng.random((k, math.ceil(height / 4), math.ceil(width / 4)), dtype=np.float32)
    return keys, cam, high


def write_store(path: Path, images: dict[str, tuple], **kwargs) -> None:
    with CamStoreWriter(path, CONFIG, SHA, **kwargs) as writer:
        for image_id, (keys, cam, high) in images.items():
            writer.write(image_id, keys, cam, high)


@pytest.fixture
def images() -> dict[str, tuple]:
    rng = np.random.default_rng(0)
    return {"2007_000032": fake_cams(rng, 2, 37, 50), "b": fake_cams(rng, 1, 16, 16), "c": fake_cams(rng, 3, 9, 5)}


def test_round_trip_float16_precision(tmp_path: Path, images: dict) -> None:
    path = tmp_path / "cams.h5"
    write_store(path, images)
    store = CamStore(path)
    assert sorted(store.ids()) == sorted(images) and len(store) == 3
    assert "b" in store and "zzz" not in store
    for image_id, (keys, cam, high) in images.items():
        got_keys, got_high = store.read(image_id)
        assert got_keys.dtype == np.int64 and got_keys.tolist() == keys.tolist()
        assert got_high.dtype == np.float32 and got_high.shape == high.shape
        np.testing.assert_array_equal(got_high, high.astype(np.float16).astype(np.float32))
        assert np.abs(got_high - high).max() <= 2 ** -11  # float16 precision on [0, 1]
        _, got_cam = store.read(image_id, high_res=False)
        np.testing.assert_array_equal(got_cam, cam.astype(np.float16).astype(np.float32))
    store.close()


def test_half_to_float32_is_exact_for_every_finite_half() -> None:
    every = np.arange(2**16, dtype=np.uint16).view(np.float16)
    finite = every[np.isfinite(every)].reshape(1, 1, -1)
    got = half_to_float32(finite)
    np.testing.assert_array_equal(got.view(np.uint32), finite.astype(np.float32).view(np.uint32))  # -0.0, subnormals
    with pytest.raises(ValueError, match="infinite or NaN"):
        half_to_float32(np.array([0.5, np.inf], np.float16))


def test_layout_chunking_and_compression(tmp_path: Path, images: dict) -> None:
    path = tmp_path / "cams.h5"
    write_store(path, images, compression_level=3)
    with h5py.File(path, "r") as handle:
        group = handle["2007_000032"]
        assert group["keys"].dtype == np.int16
        for name, shape in (("cam", (2, 10, 13)), ("high_res", (2, 37, 50))):
            dataset = group[name]
            assert dataset.dtype == np.float16 and dataset.shape == shape
            assert dataset.chunks == (1, *shape[1:])  # one class plane per chunk
            assert dataset.compression == "gzip" and dataset.compression_opts == 3 and dataset.shuffle


def test_image_without_classes(tmp_path: Path) -> None:
    path = tmp_path / "cams.h5"
    write_store(path, {"empty": (np.zeros(0, np.int64), np.zeros((0, 3, 2), np.float32), np.zeros((0, 10, 7), np.float32))})
    keys, cams = CamStore(path).read("empty")
    assert keys.shape == (0,) and cams.shape == (0, 10, 7)


def test_provenance_attributes(tmp_path: Path, images: dict) -> None:
    path = tmp_path / "cams.h5"
    write_store(path, images)
    attrs = CamStore(path).attrs
    assert attrs["config"] == CONFIG and isinstance(attrs["config_json"], str)
    assert attrs["config_hash"] == config_hash(CONFIG) and attrs["checkpoint_sha256"] == SHA
    assert attrs["code_version"] == code_version() and attrs["schema_version"] == SCHEMA_VERSION
    assert attrs["created_utc"].endswith("+00:00")
    assert 1 <= DEFAULT_COMPRESSION_LEVEL <= 4


def test_atomic_write_leaves_nothing_on_error(tmp_path: Path, images: dict) -> None:
    path = tmp_path / "cams.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with CamStoreWriter(path, CONFIG, SHA) as writer:
            writer.write("b", *images["b"])
            assert list(tmp_path.glob("cams.h5.tmp-*")), "writes go to a temporary beside the final path"
            assert not path.exists()
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_the_old_store_on_error(tmp_path: Path, images: dict) -> None:
    path = tmp_path / "cams.h5"
    write_store(path, {"b": images["b"]})
    with pytest.raises(ValueError):
        with CamStoreWriter(path, CONFIG, SHA) as writer:
            writer.write("c", images["c"][0], images["b"][1], images["c"][2])  # wrong cam size
    assert CamStore(path).ids() == ["b"] and [p.name for p in tmp_path.iterdir()] == ["cams.h5"]


@pytest.mark.parametrize("change, message", [
    (lambda k, c, h: (k[:1], c, h), "1 keys but cam has 2"),
    (lambda k, c, h: (k, c[:, :-1], h), r"expected ceil\(H/4\) x ceil\(W/4\) = \(10, 13\)"),
    (lambda k, c, h: (k, c, h[0]), "high_res must be a floating K x H x W"),
    (lambda k, c, h: (k, c, (h * 255).astype(np.uint8)), "high_res must be a floating"),
    (lambda k, c, h: (k.astype(np.float32), c, h), "keys must be a 1-D integer"),
    (lambda k, c, h: (k[[0, 0]], c, h), "distinct"),
    (lambda k, c, h: (k, c, h * 1e6), "float16's range"),
    (lambda k, c, h: (k, c * np.nan, h), "cam has values that are NaN"),
])
def test_write_validates(tmp_path: Path, images: dict, change, message: str) -> None:
    with CamStoreWriter(tmp_path / "cams.h5", CONFIG, SHA) as writer:
        with pytest.raises(ValueError, match=message) as error:
            writer.write("2007_000032", *change(*images["2007_000032"]))
        assert "2007_000032" in str(error.value)
        writer.write("b", *images["b"])
        with pytest.raises(ValueError, match="written twice"):
            writer.write("b", *images["b"])


def test_clear_errors_for_missing_corrupt_and_unknown_id(tmp_path: Path, images: dict) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        CamStore(tmp_path / "nowhere.h5").ids()
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(ValueError, match="corrupt.h5: not a readable HDF5 CAM store"):
        CamStore(corrupt).read("b")
    path = tmp_path / "cams.h5"
    write_store(path, images)
    with pytest.raises(KeyError, match=r"cams.h5.*'nope'"):
        CamStore(path).read("nope")
    with h5py.File(path, "a") as handle:
        handle.attrs["schema_version"] = 99
    with pytest.raises(ValueError, match="schema_version 99"):
        CamStore(path).ids()


def test_pickles_without_handle(tmp_path: Path, images: dict) -> None:
    path = tmp_path / "cams.h5"
    write_store(path, images)
    store = CamStore(path)
    store.read("b")  # opened
    clone = pickle.loads(pickle.dumps(store))
    assert clone._file is None
    np.testing.assert_array_equal(clone.read("c")[1], store.read("c")[1])


class CamDataset(torch.utils.data.Dataset):
    def __init__(self, store: CamStore):
        self.store, self.ids = store, sorted(store.ids())

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[str, float, int]:
        import os

        keys, cams = self.store.read(self.ids[index])
        return self.ids[index], float(cams.sum()), os.getpid()


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_reads_in_dataloader_workers(tmp_path: Path, images: dict, context: str) -> None:
    path = tmp_path / "cams.h5"
    write_store(path, images)
    store = CamStore(path)
    expected = {i: float(store.read(i)[1].sum()) for i in store.ids()}  # the parent's handle is open before the fork
    loader = torch.utils.data.DataLoader(CamDataset(store), batch_size=None, num_workers=2, multiprocessing_context=context)
    got = list(loader)
    assert {i: s for i, s, _ in got} == pytest.approx(expected)
    import os

    assert os.getpid() not in {pid for _, _, pid in got}
    assert store.read("b")[0].tolist() == images["b"][0].tolist()  # the parent's handle still works
