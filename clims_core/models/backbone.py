"""ResNet trunk for CAM, IRNet and CCT: torchvision's residual blocks at a chosen depth, width and output stride.

Width 64 is torchvision's ResNet exactly (same parameter names), so ImageNet weights from torchvision load as they are;
any width has the same parameter names, so a narrower trunk loads a state dict of its own width (the demo's, from
``pretrain_trunk``); the loader checks every shape. IRNet's setting is strides (2, 2, 2, 1): output stride 16, with
conv1/bn1 frozen and, for pretrained weights, every BatchNorm frozen (``norm: frozen``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops.misc import FrozenBatchNorm2d

from clims_core.checks import require_one_of

LAYOUTS: dict[int, tuple[type[nn.Module], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BackboneWeightsError(ValueError):
    """ImageNet weights are missing, unsafe, or do not fit the configured trunk."""


@dataclass(frozen=True)
class BackboneSpec:
    depth: int = 50
    width: int = 64  # channels after the stem; stages have width, 2x, 4x, 8x (x4 for bottlenecks)
    strides: tuple[int, int, int, int] = (2, 2, 2, 1)  # conv1, layer2, layer3, layer4 (maxpool adds 2)
    norm: str = "frozen"  # "frozen" (IRNet, with ImageNet weights) or "batch" (training from random init)
    weights: str | None = None  # a torchvision-layout state dict file (.pth) of this depth and width, weights_only

    def __post_init__(self) -> None:
        require_one_of("backbone depth", self.depth, sorted(LAYOUTS))
        if self.norm not in ("frozen", "batch"):
            raise ValueError(f"backbone norm: expected frozen or batch, got {self.norm!r}")
        object.__setattr__(self, "strides", tuple(self.strides))


class ResNetTrunk(nn.Module):
    """conv1/bn1/maxpool + layer1..4, returning the four stage outputs (strides 4, 8, 16, 16 by default)."""

    def __init__(self, spec: BackboneSpec):
        super().__init__()
        block, layers = LAYOUTS[spec.depth]
        self.spec = spec
        self._norm = FrozenBatchNorm2d if spec.norm == "frozen" else nn.BatchNorm2d
        width = spec.width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=spec.strides[0], padding=3, bias=False)
        self.bn1 = self._norm(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes = width
        self.layer1 = self._make_layer(block, width, layers[0], 1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], spec.strides[1])
        self.layer3 = self._make_layer(block, width * 4, layers[2], spec.strides[2])
        self.layer4 = self._make_layer(block, width * 8, layers[3], spec.strides[3])
        self.out_channels = [width * m * block.expansion for m in (1, 2, 4, 8)]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if spec.weights:
            load_imagenet_weights(self, spec.weights)
        for param in (*self.conv1.parameters(), *self.bn1.parameters()):
            param.requires_grad_(False)  # IRNet freezes the stem

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                self._norm(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, norm_layer=self._norm)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, norm_layer=self._norm) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        features = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            features.append(x)
        return features


def _dilate(layer: nn.Sequential, first: int, rest: int) -> None:
    """Dilate a stage's 3x3 convolutions: ``first`` for the one that carried the stride (the first 3x3 of the first
    block), ``rest`` for every other (padding = dilation keeps the size)."""
    for index, block in enumerate(layer):
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        for position, conv in enumerate(convs):
            dilation = first if index == 0 and position == 0 else rest
            conv.dilation, conv.padding = (dilation, dilation), (dilation, dilation)


def dilated_trunk(backbone: BackboneSpec, output_stride: int,
                  pretrained_strides: tuple[int, int, int, int] = (2, 2, 2, 2)) -> ResNetTrunk:
    """A ResNet trunk at ``output_stride`` (8: layer3 and layer4 at stride 1; 16: layer4 at stride 1) whose 3x3
    convolutions are dilated by how much denser their grid is than in the pretrained network."""
    strides = (2, 2, 1, 1) if output_stride == 8 else (2, 2, 2, 1)
    trunk = ResNetTrunk(replace(backbone, strides=strides))
    old, new, previous = 1, 1, 1
    for layer, old_stride, new_stride in zip((trunk.layer3, trunk.layer4), pretrained_strides[2:], strides[2:]):
        old, new = old * old_stride, new * new_stride
        if old < new:
            raise ValueError(f"output stride {output_stride} is coarser than the pretrained trunk's at a stage "
                             f"(strides {tuple(pretrained_strides)}); dilation cannot undo it")
        dilation = old // new
        if dilation > 1 or previous > 1:
            _dilate(layer, previous, dilation)
        previous = dilation
    return trunk


def load_imagenet_weights(trunk: ResNetTrunk, path: str | os.PathLike) -> None:
    """Load a torchvision-layout ResNet state dict (the classifier ``fc.*`` is dropped); every other key must be there
    with the trunk's shape, so a file of another depth or width is refused with the keys that differ."""
    path = Path(path).expanduser()
    depth, width = trunk.spec.depth, trunk.spec.width
    form = (f"a torchvision resnet{depth} ImageNet state dict (.pth), e.g. resnet{depth}-*.pth" if width == 64 else
            f"a torchvision-layout resnet{depth} state dict of width {width} (.pth), e.g. pretrain_trunk's resnet.pth")
    if not path.is_file():
        raise BackboneWeightsError(f"cam.backbone_weights {path}: file not found (expected {form})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt zip, unsafe pickle, truncated file
        raise BackboneWeightsError(f"cam.backbone_weights {path}: cannot be read safely ({error.__class__.__name__}); "
                                   f"expected {form}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BackboneWeightsError(f"cam.backbone_weights {path}: not a state dict; expected {form}")
    own = trunk.state_dict()
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items()
             if not k.startswith("fc.") and not (k.endswith("num_batches_tracked") and k not in own)}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    wrong = [f"{k} {tuple(v.shape)} (expected {tuple(own[k].shape)})" for k, v in state.items()
             if k in own and own[k].shape != v.shape]
    unexpected = [k for k in state if k not in own]
    if missing or wrong or unexpected:
        raise BackboneWeightsError(
            f"cam.backbone_weights {path}: does not fit resnet{depth} of width {width} "
            f"(missing {missing[:3]}, wrong shape {wrong[:3]}, unexpected {unexpected[:3]}); expected {form}")
    trunk.load_state_dict(state, strict=False)


def imagenet_normalize(images01: torch.Tensor) -> torch.Tensor:
    """Pixel-space [0, 1] images -> ImageNet-normalised network input."""
    mean = images01.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images01.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images01 - mean) / std
