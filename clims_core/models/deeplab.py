"""DeepLab, the segmentation network CLIMS, IRNet and CLIP-ES train on pseudo masks alone: a ResNet trunk at output
stride 8 (layer3/layer4 dilated, :func:`~clims_core.models.backbone.dilated_trunk`) and one of two heads.

- ``v2`` (Chen et al., TPAMI 2017; the papers' choice): ASPP-L, four parallel 3x3 convolutions of the last stage with
  dilation rates 6, 12, 18 and 24, each straight to the class scores, summed (DeepLabV2's ResNet form, as in its
  public Caffe model and kazuto1011's PyTorch port: no fc6/fc7 in the branches, weights N(0, 0.01), biases 0). The
  paper's training-time multi-scale input fusion (MSC: 1, 0.75, 0.5 with max) is not built in; training here uses
  random scaling of the crops instead.
- ``v3`` (Chen et al., 2017): torchvision's ``DeepLabHead``, ASPP with image pooling and BatchNorm, 256 channels, then
  a 3x3 convolution and the 1x1 classifier; rates 12, 24, 36 at output stride 8, torchvision's default. Its pooling
  branch's BatchNorm needs at least 2 images per process in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation.deeplabv3 import DeepLabHead

from clims_core.checks import require_one_of
from clims_core.models.backbone import BackboneSpec, dilated_trunk, imagenet_normalize

DEEPLAB_HEADS = ("v2", "v3")
DEFAULT_RATES = {"v2": (6, 12, 18, 24), "v3": (12, 24, 36)}


@dataclass(frozen=True)
class DeepLabSpec:
    backbone: BackboneSpec
    n_classes: int  # background included
    output_stride: int = 8
    rates: tuple[int, ...] | None = None  # None: the head's own (DEFAULT_RATES)
    pretrained_strides: tuple[int, int, int, int] = (2, 2, 2, 2)  # the strides the trunk's weights were trained with
    head: str = "v2"

    def __post_init__(self) -> None:
        require_one_of("seg.deeplab.head", self.head, DEEPLAB_HEADS)
        rates = DEFAULT_RATES[self.head] if self.rates is None else tuple(self.rates)
        if not rates or min(rates) < 1:
            raise ValueError(f"deeplab rates: expected positive dilation rates, got {rates}")
        if self.n_classes < 2:
            raise ValueError(f"deeplab: expected at least 2 classes (background + one), got {self.n_classes}")
        object.__setattr__(self, "rates", rates)
        object.__setattr__(self, "pretrained_strides", tuple(self.pretrained_strides))


class AsppL(nn.Module):
    """DeepLabV2's head: parallel dilated 3x3 convolutions straight to the class scores, summed."""

    def __init__(self, channels: int, n_classes: int, rates: tuple[int, ...]):
        super().__init__()
        self.branches = nn.ModuleList(nn.Conv2d(channels, n_classes, 3, padding=rate, dilation=rate)
                                      for rate in rates)
        for conv in self.branches:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return sum(branch(features) for branch in self.branches)


class DeepLab(nn.Module):
    """``forward`` maps pixel-space [0, 1] images to class logits at the input size (bilinear from the output grid)."""

    def __init__(self, spec: DeepLabSpec):
        super().__init__()
        self.spec = spec
        self.trunk = dilated_trunk(spec.backbone, spec.output_stride, spec.pretrained_strides)
        channels = self.trunk.out_channels[-1]
        self.head = (AsppL(channels, spec.n_classes, spec.rates) if spec.head == "v2"
                     else DeepLabHead(channels, spec.n_classes, atrous_rates=spec.rates))

    @property
    def n_classes(self) -> int:
        return self.spec.n_classes

    @property
    def output_stride(self) -> int:
        return self.spec.output_stride

    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.trunk(imagenet_normalize(images01))[-1])
        return F.interpolate(logits, size=images01.shape[-2:], mode="bilinear", align_corners=False)

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(pretrained trunk, head): DeepLab trains the new head at 10x the trunk's learning rate."""
        trunk = [p for p in self.trunk.parameters() if p.requires_grad]
        return trunk, list(self.head.parameters())
