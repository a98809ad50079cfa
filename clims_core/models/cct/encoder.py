"""CCT's encoder: a ResNet trunk at output stride 8 (dilated layer3/layer4) and PSPNet's pyramid pooling module.

The trunk is :func:`clims_core.models.backbone.dilated_trunk` (torchvision blocks, so ImageNet weights load as they
are). Strides removed from layer3/layer4 are replaced by dilation so that every 3x3 convolution samples the same
image positions as in the network the weights were trained in (``pretrained_strides``): from ImageNet's (2, 2, 2, 2)
to output stride 8 this is torchvision's ``replace_stride_with_dilation`` (layer3 x2, layer4 x4); from the demo CAM
network's (2, 2, 2, 1) layer4 needs x2 only. Within the first block of a stage, the convolution that carried the
stride keeps the previous stage's dilation (it reads the previous grid); the block's later 3x3 convolutions take the
new one. CCT's own ResNet-50 has a deep (three 3x3 convolution) stem; the standard stem is used here so torchvision
weights fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from clims_core.checks import require_one_of
from clims_core.models.backbone import BackboneSpec, dilated_trunk

OUTPUT_STRIDES = (8, 16)


@dataclass(frozen=True)
class EncoderSpec:
    backbone: BackboneSpec
    output_stride: int = 8
    bins: tuple[int, ...] = (1, 2, 3, 6)
    pretrained_strides: tuple[int, int, int, int] = (2, 2, 2, 2)  # the strides the trunk's weights were trained with

    def __post_init__(self) -> None:
        require_one_of("output_stride", self.output_stride, OUTPUT_STRIDES)
        if not self.bins or min(self.bins) < 1:
            raise ValueError(f"psp bins: expected positive sizes, got {self.bins}")
        object.__setattr__(self, "bins", tuple(self.bins))
        object.__setattr__(self, "pretrained_strides", tuple(self.pretrained_strides))
        if self.pretrained_strides[:2] != (2, 2) or any(s not in (1, 2) for s in self.pretrained_strides[2:]):
            raise ValueError(f"pretrained_strides: expected (2, 2, 1 or 2, 1 or 2), got {self.pretrained_strides}")


class PyramidPooling(nn.Module):
    """PSPNet's module: average-pool to each bin size, 1x1 conv to ``in / len(bins)`` channels, upsample, concatenate
    with the input, then a 3x3 conv (+BN, ReLU) to ``in / len(bins)`` channels (CCT's ``_PSPModule``)."""

    def __init__(self, in_channels: int, bins: tuple[int, ...]):
        super().__init__()
        self.out_channels = in_channels // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(size), nn.Conv2d(in_channels, self.out_channels, 1, bias=False),
                          nn.BatchNorm2d(self.out_channels), nn.ReLU(inplace=True))
            for size in bins)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(in_channels + self.out_channels * len(bins), self.out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(self.out_channels), nn.ReLU(inplace=True))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        size = features.shape[-2:]
        pyramid = [features] + [F.interpolate(stage(features), size=size, mode="bilinear", align_corners=False)
                                for stage in self.stages]
        return self.bottleneck(torch.cat(pyramid, dim=1))


class Encoder(nn.Module):
    """Images (ImageNet-normalised) -> PSP features at ``output_stride``, ``out_channels`` = trunk channels / 4."""

    def __init__(self, spec: EncoderSpec):
        super().__init__()
        self.spec = spec
        self.trunk = dilated_trunk(spec.backbone, spec.output_stride, spec.pretrained_strides)
        self.psp = PyramidPooling(self.trunk.out_channels[-1], spec.bins)
        self.out_channels = self.psp.out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.psp(self.trunk(images)[-1])
