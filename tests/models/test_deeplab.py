"""DeepLab: ASPP-L (v2) or torchvision's DeepLabV3 head (v3) on a dilated trunk, logits at the input size, checkpoint records that rebuild the network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clims_core.io.checkpoint import save_checkpoint
from clims_core.models.backbone import BackboneSpec, imagenet_normalize
from clims_core.models.cam_net import CamNet
from clims_core.models.cct import CCT, CctSpec, EncoderSpec
from clims_core.models.deeplab import DeepLab, DeepLabSpec
from clims_core.models.segmentation import (architecture_of, initialise_trunk_from_cam, load_seg_model,
                                            network_from_architecture)

TINY = BackboneSpec(depth=18, width=8, norm="batch")


def test_aspp_has_four_dilated_branches_summed_into_logits_at_the_input_size():
    torch.manual_seed(0)
    model = DeepLab(DeepLabSpec(TINY, 5)).eval()
    assert [conv.dilation for conv in model.head.branches] == [(6, 6), (12, 12), (18, 18), (24, 24)]
    assert all(conv.out_channels == 5 and conv.in_channels == 64 for conv in model.head.branches)
    assert model.n_classes == 5 and model.output_stride == 8
    x = torch.rand(2, 3, 44, 52)
    logits = model(x)
    assert logits.shape == (2, 5, 44, 52)
    # the sum of the branches on the output grid, then bilinear to the input
    features = model.trunk(imagenet_normalize(x))[-1]
    assert features.shape[-2:] == (6, 7)  # output stride 8 (ceil of 44/8, 52/8)
    grid = sum(branch(features) for branch in model.head.branches)
    expected = nn.functional.interpolate(grid, size=(44, 52), mode="bilinear", align_corners=False)
    assert torch.allclose(logits, expected, atol=1e-6)


def test_parameter_groups_split_trunk_and_aspp_and_leave_the_frozen_stem_out():
    model = DeepLab(DeepLabSpec(TINY, 3))
    trunk, head = model.parameter_groups()
    assert {id(p) for p in head} == {id(p) for p in model.head.branches.parameters()}
    assert not {id(p) for p in trunk} & {id(p) for p in head}
    assert all(id(p) not in {id(q) for q in trunk} for p in model.trunk.conv1.parameters())
    assert len(trunk) + len(head) + len(list(model.trunk.conv1.parameters())) + len(list(model.trunk.bn1.parameters())) \
        == len(list(model.parameters()))


def test_v3_head_is_torchvisions_with_its_rates_and_trains_at_the_head_rate():
    from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabHead

    model = DeepLab(DeepLabSpec(TINY, 5, head="v3"))
    assert isinstance(model.head, DeepLabHead) and model.spec.rates == (12, 24, 36)
    aspp = next(m for m in model.head.modules() if isinstance(m, ASPP))
    assert [m[0].dilation for m in aspp.convs[1:4]] == [(12, 12), (24, 24), (36, 36)]
    assert model(torch.rand(2, 3, 40, 48)).shape == (2, 5, 40, 48)
    trunk, head = model.parameter_groups()
    assert {id(p) for p in head} == {id(p) for p in model.head.parameters()} and not {id(p) for p in trunk} & {
        id(p) for p in head}
    assert DeepLabSpec(TINY, 5, rates=(3, 6), head="v3").rates == (3, 6)


def test_spec_refuses_bad_rates_heads_and_class_counts():
    with pytest.raises(ValueError, match="rates"):
        DeepLabSpec(TINY, 3, rates=())
    with pytest.raises(ValueError, match="seg.deeplab.head"):
        DeepLabSpec(TINY, 3, head="v1")
    with pytest.raises(ValueError, match="at least 2 classes"):
        DeepLabSpec(TINY, 1)


@pytest.mark.parametrize("make", [
    lambda: DeepLab(DeepLabSpec(TINY, 4, rates=(2, 4), pretrained_strides=(2, 2, 2, 1))),
    lambda: DeepLab(DeepLabSpec(TINY, 4, pretrained_strides=(2, 2, 2, 1), head="v3")),
    lambda: CCT(CctSpec(EncoderSpec(TINY, 8), 4, decoders={"dropout": 1}, decoder="bilinear")),
], ids=["deeplab", "deeplab_v3", "cct"])
def test_a_checkpoint_rebuilds_the_same_network(make, tmp_path):
    torch.manual_seed(0)
    model = make().eval()
    arch = architecture_of(model)
    assert arch["method"] in ("deeplab", "cct")
    save_checkpoint(tmp_path / "m.pt", model.state_dict(), {}, 3, architecture=arch)
    loaded, payload = load_seg_model(tmp_path / "m.pt")
    assert type(loaded) is type(model) and loaded.spec == model.spec and not loaded.training and payload["step"] == 3
    x = torch.rand(1, 3, 32, 40)
    assert torch.equal(loaded(x), model(x))


def test_an_old_checkpoint_record_without_method_is_cct():
    model = CCT(CctSpec(EncoderSpec(TINY, 8), 4, decoders={}))
    arch = architecture_of(model)
    del arch["method"]
    assert isinstance(network_from_architecture(arch), CCT)
    with pytest.raises(ValueError, match="unknown segmentation method 'unet'"):
        network_from_architecture({**arch, "method": "unet"})


def test_cam_init_copies_the_cam_trunk_into_deeplab_and_refuses_another_grid(tmp_path):
    cam = CamNet(TINY, 3)
    save_checkpoint(tmp_path / "cam.pt", cam.state_dict(), {}, 1, architecture={
        "backbone": {"depth": 18, "width": 8, "strides": [2, 2, 2, 1], "norm": "batch", "weights": None},
        "n_classes": 3, "background_channel": False})
    model = DeepLab(DeepLabSpec(TINY, 4, pretrained_strides=(2, 2, 2, 1)))
    initialise_trunk_from_cam(model, tmp_path / "cam.pt")
    assert torch.equal(model.trunk.layer4[1].conv2.weight, cam.trunk.layer4[1].conv2.weight)
    with pytest.raises(ValueError, match=r"strides \(2, 2, 2, 1\), but the network's dilation assumes"):
        initialise_trunk_from_cam(DeepLab(DeepLabSpec(TINY, 4)), tmp_path / "cam.pt")
