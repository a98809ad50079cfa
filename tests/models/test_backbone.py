"""The ResNet trunk: output strides, torchvision weight compatibility, frozen stem, clear weight errors."""

from __future__ import annotations

import pickle

import pytest
import torch
import torchvision

from clims_core.models.backbone import BackboneSpec, BackboneWeightsError, ResNetTrunk
from clims_core.models.cam_net import CamNet


def test_strides_and_channels():
    trunk = ResNetTrunk(BackboneSpec(depth=18, width=16, norm="batch"))
    shapes = [f.shape for f in trunk(torch.rand(1, 3, 64, 96))]
    assert [s[-2:] for s in shapes] == [(16, 24), (8, 12), (4, 6), (4, 6)]  # strides 4, 8, 16, 16
    assert [s[1] for s in shapes] == trunk.out_channels == [16, 32, 64, 128]
    assert not any(p.requires_grad for p in [*trunk.conv1.parameters(), *trunk.bn1.parameters()])


def test_torchvision_weights_load_and_match(tmp_path):
    reference = torchvision.models.resnet18().eval()
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    trunk = ResNetTrunk(BackboneSpec(depth=18, strides=(2, 2, 2, 2), weights=str(tmp_path / "r18.pth"))).eval()
    x = torch.rand(1, 3, 64, 64)
    expected = reference.layer4(reference.layer3(reference.layer2(reference.layer1(
        reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))))))
    assert torch.allclose(trunk(x)[-1], expected, atol=1e-5)


def test_bad_weights_are_named(tmp_path):
    with pytest.raises(BackboneWeightsError, match="nope.pth: file not found"):
        ResNetTrunk(BackboneSpec(depth=18, weights=str(tmp_path / "nope.pth")))
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(BackboneWeightsError, match="does not fit resnet50"):
        ResNetTrunk(BackboneSpec(depth=50, weights=str(tmp_path / "r18.pth")))
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"x": object()}))
    with pytest.raises(BackboneWeightsError, match="cannot be read safely"):
        ResNetTrunk(BackboneSpec(depth=18, weights=str(tmp_path / "evil.pth")))
    with pytest.raises(BackboneWeightsError, match=r"does not fit resnet18 of width 32 .*conv1\.weight \(64, 3, 7, 7\) "
                       r"\(expected \(32, 3, 7, 7\)\).*width 32"):
        ResNetTrunk(BackboneSpec(depth=18, width=32, weights=str(tmp_path / "r18.pth")))


def test_narrow_weights_of_the_same_width_load(tmp_path):
    """A width-32 state dict in torchvision's layout (what pretrain_trunk writes) loads into a width-32 trunk."""
    source = ResNetTrunk(BackboneSpec(depth=18, width=32, norm="batch"))
    torch.save(source.state_dict(), tmp_path / "narrow.pth")
    trunk = ResNetTrunk(BackboneSpec(depth=18, width=32, norm="frozen", weights=str(tmp_path / "narrow.pth")))
    assert torch.equal(trunk.layer3[1].conv2.weight, source.layer3[1].conv2.weight)
    assert torch.equal(trunk.bn1.running_var, source.bn1.running_var)


def test_cam_net_outputs_agree():
    model = CamNet(BackboneSpec(depth=18, width=16, norm="batch"), n_classes=3).eval()
    x = torch.rand(2, 3, 64, 64)
    features = model.features(x)
    maps = model.maps_from(features)
    assert torch.allclose(model(x), maps.mean(dim=(2, 3)), atol=1e-5)  # GAP then 1x1 == 1x1 then GAP
    assert torch.equal(model.cams(x), torch.relu(maps))
    with_bg = CamNet(BackboneSpec(depth=18, width=16, norm="batch"), n_classes=3, background_channel=True)
    assert with_bg.activation_maps(x).shape[1] == 4 and with_bg(x).shape == (2, 3)
