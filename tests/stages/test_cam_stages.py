"""train_cam (all three methods), make_cams and the CAM store on a tiny world: they run, write what later stages read,
shards union to the whole split, and every stored map is normalised by its max."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clims_core.data.manifest import Manifest
from clims_core.io.cam_store import CamStore
from clims_core.io.checkpoint import load_checkpoint
from clims_core.models.backbone import BackboneSpec
from clims_core.models.clip import save_clip_checkpoint, build_clip
from clims_core.stages import make_cams, merge_cams, train_cam
from clims_core.methods.clims_settings import ClimsSettings
from tests.conftest import THREADS, TINY_CLIP_CFG

BACKBONE = BackboneSpec(depth=18, width=8, norm="batch")


def settings(method, **overrides):
    values = dict(method=method, backbone=BACKBONE, epochs=1, batch_size=8, lr=0.01, crop=64, resize_long=(48, 80),
                  threads=THREADS, clims=ClimsSettings(background_words=["railroad", "water"]))
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


def test_make_cams_reuses_the_train_stores_maps_bit_for_bit(tiny_world, cam_checkpoint, tmp_path):
    """train_aug's store copies the images the train split's store holds: the same bytes as computing them, only the
    rest computed; a store of other settings is refused by name."""
    manifest = Manifest.load(tiny_world["manifest"])
    train, train_aug = set(manifest.ids("train")), manifest.ids("train_aug")
    shared = [i for i in make_cams.shard_ids(train_aug, 1, 2) if i in train]
    assert shared, "the tiny world's train split lies inside train_aug, as VOC's"
    made = make_cams.MakeCamsSettings(split="train", scales=(1.0, 0.5), threads=THREADS)
    make_cams.run(made, tiny_world["manifest"], cam_checkpoint, tmp_path / "train.h5")
    aug = make_cams.MakeCamsSettings(split="train_aug", scales=(1.0, 0.5), shard=1, shards=2, threads=THREADS)
    reused = make_cams.run(aug, tiny_world["manifest"], cam_checkpoint, tmp_path / "reused.h5",
                           reuse_path=tmp_path / "train.h5")
    computed = make_cams.run(aug, tiny_world["manifest"], cam_checkpoint, tmp_path / "computed.h5")
    assert reused["images"] == computed["images"] == computed["computed"] == len(make_cams.shard_ids(train_aug, 1, 2))
    assert reused["computed"] == reused["images"] - len(shared)
    with CamStore(tmp_path / "reused.h5") as a, CamStore(tmp_path / "computed.h5") as b:
        assert sorted(a.ids()) == sorted(b.ids())
        for image_id in a.ids():
            for high_res in (True, False):
                keys_a, maps_a = a.read(image_id, high_res=high_res)
                keys_b, maps_b = b.read(image_id, high_res=high_res)
                assert np.array_equal(keys_a, keys_b) and np.array_equal(maps_a, maps_b), image_id
        assert a.attrs["config"] == b.attrs["config"]
    other = make_cams.MakeCamsSettings(split="train_aug", scales=(1.0,), shard=1, shards=2, threads=THREADS)
    with pytest.raises(ValueError, match=r"train\.h5: its CAMs come from another checkpoint or other cams settings"):
        make_cams.run(other, tiny_world["manifest"], cam_checkpoint, tmp_path / "x.h5", reuse_path=tmp_path / "train.h5")
    assert not (tmp_path / "x.h5").exists()


def test_make_cams_store_and_shards(tiny_world, cam_checkpoint, tmp_path):
    whole = make_cams.MakeCamsSettings(split="train", scales=(1.0, 0.5), threads=THREADS)
    make_cams.run(whole, tiny_world["manifest"], cam_checkpoint, tmp_path / "all.h5")
    for shard in range(2):
        part = make_cams.MakeCamsSettings(split="train", scales=(1.0, 0.5), shard=shard, shards=2, threads=THREADS)
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
        assert store.attrs["config"]["split"] == "train" and store.attrs["config"]["resize"] == "pil_bicubic"
    # the shards of one split are one run's: merge_cams joins them into the whole split's store
    merge_cams.run([tmp_path / "s0.h5", tmp_path / "s1.h5"], tmp_path / "merged.h5")
    with CamStore(tmp_path / "all.h5") as store, CamStore(tmp_path / "merged.h5") as merged:
        assert sorted(merged.ids()) == sorted(store.ids())
        assert np.array_equal(merged.read(image_id)[1], store.read(image_id)[1])


# A vertical step edge, 4 x 4 (every row 0 0 255 255), as a 3-channel uint8 image.
STEP = torch.tensor([0, 0, 255, 255], dtype=torch.uint8).expand(3, 4, 4).contiguous()


def test_pil_bicubic_is_pils_antialiased_bicubic_by_hand():
    """Halving: PIL widens the bicubic kernel (a = -0.5) to 4 px; output column 0 (centre 1.0) weighs input columns
    0..3 by k(0.25), k(0.25), k(0.75), k(1.25) = 0.8672, 0.8672, 0.2266, -0.0703 (sum 1.8906), so it is
    255 * (0.2266 - 0.0703) / 1.8906 = 21.07 -> 21, and column 1 is 255 - 21.07 -> 234. Bilinear without
    antialiasing samples between columns 0|1 and 2|3: 0 and 255. Doubling [0, 255] (kernel 2 px, taps clipped to the
    image and renormalised): column 1 (centre 0.75) is 255 * 0.2266 / (0.8672 + 0.2266) = 52.8 -> 53, column 2 202."""
    half = make_cams.pil_bicubic(STEP, (2, 2))
    assert half.dtype == torch.uint8 and half.tolist() == [[[21, 234], [21, 234]]] * 3
    bilinear = torch.nn.functional.interpolate(STEP[None].float(), size=(2, 2), mode="bilinear", align_corners=False)
    assert bilinear[0, 0].tolist() == [[0.0, 255.0], [0.0, 255.0]]
    pair = torch.tensor([0, 255], dtype=torch.uint8).expand(3, 2, 2).contiguous()
    assert make_cams.pil_bicubic(pair, (2, 4))[0].tolist() == [[0, 53, 202, 255]] * 2
    assert make_cams.pil_bicubic(STEP, (4, 4)) is STEP  # IRNet's pil_resize leaves the same size alone


class _Recorder(torch.nn.Module):
    """A CAM model that records its inputs and returns them (3 'classes' = the RGB planes)."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def cams(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.clone())
        return x


def test_multiscale_cams_feed_the_network_pil_bicubic_or_bilinear_scales():
    image = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 15, 22), dtype=np.uint8))
    scales = (1.0, 0.5, 1.5)
    model = _Recorder()
    low, high = make_cams.multiscale_cams(model, image, scales, True, torch.device("cpu"), "fp32")
    for x, scale in zip(model.inputs, scales):
        size = make_cams.scaled_size(15, 22, scale)
        reference = np.asarray(Image.fromarray(image.numpy().transpose(1, 2, 0)).resize(size[::-1], Image.BICUBIC))
        expected = torch.from_numpy(reference.transpose(2, 0, 1).copy()).float() / 255
        assert torch.equal(x[0], expected) and torch.equal(x[1], expected.flip(-1))  # the image, then its mirror
    assert [tuple(x.shape[-2:]) for x in model.inputs] == [(15, 22), (8, 11), (22, 33)]  # 7.5 -> 8, 22.5 -> 22
    prescaled = make_cams.multiscale_cams(_Recorder(), image, scales, True, torch.device("cpu"), "fp32",
                                          scaled=make_cams.pil_scales(image, scales))  # as the DataLoader workers do
    assert torch.equal(prescaled[0], low) and torch.equal(prescaled[1], high)
    old = _Recorder()
    make_cams.multiscale_cams(old, image, scales, True, torch.device("cpu"), "fp32", resize="bilinear")
    expected = torch.nn.functional.interpolate(image[None].float() / 255, size=(8, 11), mode="bilinear",
                                               align_corners=False)
    assert torch.equal(old.inputs[1][:1], expected)
    assert (old.inputs[1][:1] - model.inputs[1][:1]).abs().max() > 0.05  # the two resizes differ visibly


def test_bad_resize_names_the_key():
    with pytest.raises(ValueError, match=r"cams.resize: expected one of \['pil_bicubic', 'bilinear'\], got 'bicubic'"):
        make_cams.MakeCamsSettings(resize="bicubic")
    with pytest.raises(ValueError, match="cams.resize"):
        make_cams.multiscale_cams(_Recorder(), STEP, (1.0,), False, torch.device("cpu"), "fp32", resize="nearest")
