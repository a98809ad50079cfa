"""DeepLabV2 (Chen et al., TPAMI 2017), the segmentation network CLIMS, IRNet and CLIP-ES train on pseudo masks alone.

A ResNet trunk at output stride 8 (layer3/layer4 dilated, :func:`~clims_core.models.backbone.dilated_trunk`) and
ASPP-L: four parallel 3x3 convolutions of the last stage with dilation rates 6, 12, 18 and 24, each straight to the
class scores, summed (DeepLabV2's ResNet form, as in its public Caffe model and kazuto1011's PyTorch port: no fc6/fc7
in the branches, weights N(0, 0.01), biases 0). The paper's training-time multi-scale input fusion (MSC: 1, 0.75, 0.5
with max) is not built in; training here uses random scaling of the crops instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from clims_core.models.backbone import BackboneSpec, dilated_trunk, imagenet_normalize

DEEPLAB_RATES = (6, 12, 18, 24)


@dataclass(frozen=True)
class DeepLabSpec:
    backbone: BackboneSpec
    n_classes: int  # background included
    output_stride: int = 8
    rates: tuple[int, ...] = DEEPLAB_RATES
    pretrained_strides: tuple[int, int, int, int] = (2, 2, 2, 2)  # the strides the trunk's weights were trained with

    def __post_init__(self) -> None:
        if not self.rates or min(self.rates) < 1:
            raise ValueError(f"deeplab rates: expected positive dilation rates, got {self.rates}")
        if self.n_classes < 2:
            raise ValueError(f"deeplab: expected at least 2 classes (background + one), got {self.n_classes}")
        object.__setattr__(self, "rates", tuple(self.rates))
        object.__setattr__(self, "pretrained_strides", tuple(self.pretrained_strides))


class DeepLabV2(nn.Module):
    """``forward`` maps pixel-space [0, 1] images to class logits at the input size (bilinear from the output grid)."""

    def __init__(self, spec: DeepLabSpec):
        super().__init__()
        self.spec = spec
        self.trunk = dilated_trunk(spec.backbone, spec.output_stride, spec.pretrained_strides)
        channels = self.trunk.out_channels[-1]
        self.aspp = nn.ModuleList(nn.Conv2d(channels, spec.n_classes, 3, padding=rate, dilation=rate)
                                  for rate in spec.rates)
        for conv in self.aspp:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    @property
    def n_classes(self) -> int:
        return self.spec.n_classes

    @property
    def output_stride(self) -> int:
        return self.spec.output_stride

    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        features = self.trunk(imagenet_normalize(images01))[-1]
        logits = sum(branch(features) for branch in self.aspp)
        return F.interpolate(logits, size=images01.shape[-2:], mode="bilinear", align_corners=False)

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(pretrained trunk, ASPP): DeepLabV2 trains the new classifier at 10x the trunk's learning rate."""
        trunk = [p for p in self.trunk.parameters() if p.requires_grad]
        return trunk, list(self.aspp.parameters())
