"""train_cam (all three methods), make_cams and the CAM store on a tiny world: they run, write what later stages read,
shards union to the whole split, and every stored map is normalised by its max."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clims_core.io.cam_store import CamStore
from clims_core.io.checkpoint import load_checkpoint
from clims_core.models.backbone import BackboneSpec
from clims_core.models.clip import save_clip_checkpoint, build_clip
from clims_core.stages import make_cams, train_cam
from clims_core.stages.clims_settings import ClimsSettings
from tests.conftest import TINY_CLIP_CFG

BACKBONE = BackboneSpec(depth=18, width=8, norm="batch")


def settings(method, **overrides):
    values = dict(method=method, backbone=BACKBONE, epochs=1, batch_size=8, lr=0.01, crop=64, resize_long=(48, 80),
                  threads=2, clims=ClimsSettings(background_words=["railroad", "water"]))
    return train_cam.CamTrainSettings(**(values | overrides))


@pytest.fixture(scope="module")
def cam_checkpoint(tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("cam")
    metrics = train_cam.run(settings("cam"), tiny_world["manifest"], out / "cam.pt", out / "cam.json")
    assert metrics["steps"] == 160 // 8
    return out / "cam.pt"


def test_puzzlecam_trains(tiny_world, tmp_path):
    metrics = train_cam.run(settings("puzzlecam"), tiny_world["manifest"], tmp_path / "p.pt", tmp_path / "p.json")
    assert {"cls", "pcls", "re", "alpha"} <= set(metrics["history"][0])


def test_clims_starts_from_cam_and_changes_only_through_clip(tiny_world, cam_checkpoint, tmp_path):
    clip_path = tmp_path / "clip.pt"
    save_clip_checkpoint(clip_path, build_clip(TINY_CLIP_CFG), TINY_CLIP_CFG, {}, 0, model_name="tiny")
    metrics = train_cam.run(settings("clims", lr=0.001), tiny_world["manifest"], tmp_path / "c.pt", tmp_path / "c.json",
                            init_checkpoint=cam_checkpoint, clip=(None, str(clip_path)))
    assert {"otm", "btm", "cbs", "reg"} <= set(metrics["history"][0])
    before, after = load_checkpoint(cam_checkpoint)["model"], load_checkpoint(tmp_path / "c.pt")["model"]
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])


def test_clims_needs_its_inputs(tiny_world, tmp_path):
    with pytest.raises(ValueError, match="cam checkpoint"):
        train_cam.run(settings("clims"), tiny_world["manifest"], tmp_path / "c.pt", tmp_path / "c.json")


def test_make_cams_store_and_shards(tiny_world, cam_checkpoint, tmp_path):
    whole = make_cams.MakeCamsSettings(split="train", scales=(1.0, 0.5), threads=2)
    make_cams.run(whole, tiny_world["manifest"], cam_checkpoint, tmp_path / "all.h5")
    for shard in range(2):
        part = make_cams.MakeCamsSettings(split="train", scales=(1.0, 0.5), shard=shard, shards=2, threads=2)
        make_cams.run(part, tiny_world["manifest"], cam_checkpoint, tmp_path / f"s{shard}.h5")
    with CamStore(tmp_path / "all.h5") as store, CamStore(tmp_path / "s0.h5") as s0, CamStore(tmp_path / "s1.h5") as s1:
        assert sorted(store.ids()) == sorted(s0.ids() + s1.ids()) and len(store) == 40
        image_id = store.ids()[0]
        keys, high = store.read(image_id)
        _, low = store.read(image_id, high_res=False)
        assert high.shape[1:] == (64, 64) and low.shape[1:] == (16, 16)
        peaks = high.reshape(len(keys), -1).max(axis=1)  # each map max-normalised; a map with no activation stays 0
        assert all(np.isclose(p, 1.0, atol=1e-2) or p == 0 for p in peaks)
        other = s0 if image_id in s0 else s1
        assert np.array_equal(other.read(image_id)[1], high)
        assert store.attrs["config"]["split"] == "train"
