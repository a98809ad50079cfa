"""Stand-in weights load through the very code that loads real ones (clip.weights, cam.backbone_weights)."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch

from clims_core.losses.cam import multilabel_loss
from clims_core.models.backbone import BackboneSpec, ResNetTrunk
from clims_core.models.cam_net import CamNet
from clims_core.models.clip import load_clip
from clims_core.models.standin_weights import write_open_clip, write_openai_clip, write_torchvision_resnet
from tests.models.test_clip import TINY


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_openai_archive_loads_as_openai_clip_with_its_architecture_from_the_shapes(tmp_path):
    path = write_openai_clip(tmp_path / "clip" / "ViT-tiny.pt", TINY, seed=3)
    loaded = load_clip(None, path)
    assert loaded.model_cfg == TINY and loaded.mean[0] == pytest.approx(0.4815, abs=1e-3)  # OpenAI's normalisation
    again = load_clip(None, write_openai_clip(tmp_path / "again.pt", TINY, seed=3))
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(), again.model.state_dict().values()))


def test_open_clip_state_dict_loads_under_its_architecture_name(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "standin-tiny.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(tmp_path / "cfg")
    path = write_open_clip(tmp_path / "tiny.safetensors", "standin-tiny")
    loaded = load_clip("standin-tiny", path)
    assert loaded.model_cfg == TINY
    with pytest.raises(ValueError, match="unknown open_clip architecture"):
        write_open_clip(tmp_path / "x.safetensors", "no-such-model")


def smooth_unit_images(generator: torch.Generator) -> torch.Tensor:
    """Four 128 px images in [0, 1], blobs rather than pixel noise (CamNet normalises them itself)."""
    coarse = torch.rand(4, 3, 6, 6, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=128, mode="bilinear")


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_resnet_loads_as_imagenet_weights(tmp_path, depth):
    path = write_torchvision_resnet(tmp_path / f"resnet{depth}.pth", depth)
    trunk = ResNetTrunk(BackboneSpec(depth=depth, width=64, weights=str(path)))
    state = torch.load(path, weights_only=True)
    assert torch.equal(trunk.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    # calibrated: with BatchNorm frozen (as IRNet trains on ImageNet weights) the plain CAM trains at the paper's lr
    # (0.1, head 1.0) without diverging; torchvision's untouched init reached a loss of 1e36 in its second step
    assert not torch.equal(state["bn1.running_var"], torch.ones_like(state["bn1.running_var"]))
    torch.manual_seed(0)
    net = CamNet(BackboneSpec(depth=depth, width=64, norm="frozen", weights=str(path)), 20).train()
    trunk_params, head = net.parameter_groups()
    optimizer = torch.optim.SGD([{"params": trunk_params, "lr": 0.1}, {"params": head, "lr": 1.0}], momentum=0.9)
    generator = torch.Generator().manual_seed(1)
    images = smooth_unit_images(generator)
    labels = (torch.rand(4, 20, generator=generator) < 0.15).float()
    for _ in range(3):
        loss = multilabel_loss(net(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss) and loss.item() < 5, loss
    with pytest.raises(ValueError, match="depth 152"):
        write_torchvision_resnet(tmp_path / "r.pth", 152)
