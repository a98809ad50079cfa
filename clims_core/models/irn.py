"""IRNet's class-boundary branch (Ahn, Cho, Kwak, CVPR 2019) on a frozen ResNet trunk.

Five taps (the stem after max-pooling and the outputs of layer1..4), each a 1x1 convolution to 32 channels with
GroupNorm(4); the deeper taps are upsampled to the stem's resolution (stride 4) before their ReLU, as in IRNet; a 1x1
convolution fuses them into one boundary logit per pixel. The trunk is frozen and always in eval mode: IRNet trains
only the branch, on detached features. Input images are in pixel space [0, 1]; ImageNet normalisation happens inside.

Only the semantic-segmentation half of IRNet is here: the displacement field branch serves instance masks.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from clims_core.device import autocast, memory_format
from clims_core.io.checkpoint import load_checkpoint
from clims_core.models.backbone import IMAGENET_MEAN, BackboneSpec, ResNetTrunk, imagenet_normalize

CHANNELS = 32  # IRNet's branch width


class EdgeNet(nn.Module):
    # The pixel-space colour that the input normalisation (imagenet_normalize) maps to 0: IRNet pads its normalised
    # input with 0, so padding in pixel space takes this colour.
    input_mean: tuple[float, float, float] = IMAGENET_MEAN

    def __init__(self, trunk: ResNetTrunk, channels: int = CHANNELS):
        super().__init__()
        if trunk.spec.strides[0] != 2:
            raise ValueError(f"IRN needs a trunk whose stem has stride 4 (conv1 stride 2 + max-pool), got conv1 "
                             f"stride {trunk.spec.strides[0]}: the boundary map must match the CAM store's stride 4")
        self.trunk = trunk.requires_grad_(False)
        widths = [trunk.spec.width, *trunk.out_channels]
        self.taps = nn.ModuleList(nn.Sequential(nn.Conv2d(width, channels, 1, bias=False), nn.GroupNorm(4, channels))
                                  for width in widths)
        self.fuse = nn.Conv2d(channels * len(widths), 1, 1, bias=True)
        self.trunk.eval()

    @property
    def input_multiple(self) -> int:
        """Input sides are padded to a multiple of this (the trunk's total stride), so every tap divides exactly."""
        return 2 * math.prod(self.trunk.spec.strides)

    def train(self, mode: bool = True) -> "EdgeNet":
        super().train(mode)
        self.trunk.eval()  # frozen: BatchNorm keeps its running statistics
        return self

    @torch.no_grad()
    def features(self, images01: torch.Tensor) -> list[torch.Tensor]:
        """The five taps' inputs (no gradient: the trunk is frozen)."""
        trunk = self.trunk
        x = trunk.maxpool(trunk.relu(trunk.bn1(trunk.conv1(imagenet_normalize(images01)))))
        features = [x]
        for layer in (trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4):
            x = layer(x)
            features.append(x)
        return features

    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        """Boundary logits N x 1 x H/4 x W/4."""
        features = self.features(images01)
        size = features[0].shape[-2:]
        outs = []
        for tap, feature in zip(self.taps, features):
            x = tap(feature)
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            outs.append(F.relu(x))
        return self.fuse(torch.cat(outs, dim=1))

    def branch_parameters(self) -> list[nn.Parameter]:
        return [*self.taps.parameters(), *self.fuse.parameters()]


@torch.no_grad()
def boundary_map(model: EdgeNet, image_u8: torch.Tensor, min_size: int, device: torch.device,
                 precision: str = "auto") -> torch.Tensor:
    """IRNet's ``EdgeDisplacement`` inference: the image and its mirror, padded (right and bottom) to at least
    ``min_size`` (the training crop), boundary probability ``sigmoid`` of the two logits' mean, cropped to
    ceil(H/4) x ceil(W/4) (the CAM store's ``cam`` size). The padding is the model's ``input_mean`` colour, which
    normalises to 0: IRNet pads the normalised input with 0 (black padding would be a strong edge at the border)."""
    height, width = image_u8.shape[-2:]
    multiple = model.input_multiple
    padded = [max(min_size, math.ceil(side / multiple) * multiple) for side in (height, width)]
    image = image_u8.to(device).float().div(255)[None]
    mean = torch.tensor(model.input_mean, dtype=image.dtype, device=device).view(1, 3, 1, 1)
    pair = mean.expand(2, 3, *padded).clone()
    pair[..., :height, :width] = torch.cat([image, image.flip(-1)])  # flip, then pad
    with autocast(device, precision):
        logits = model(pair.contiguous(memory_format=memory_format(device)))[:, 0].float()
    out_h, out_w = math.ceil(height / 4), math.ceil(width / 4)
    logits = logits[:, :out_h, :out_w]
    return torch.sigmoid(logits[0] / 2 + logits[1].flip(-1) / 2)


def load_irn_model(checkpoint_path: str | Path) -> tuple[EdgeNet, dict[str, Any]]:
    """Rebuild a trained IRN from its checkpoint (trunk included: the file is self-contained)."""
    payload = load_checkpoint(checkpoint_path, required=("model", "config", "step", "architecture"))
    spec = BackboneSpec(**payload["architecture"]["backbone"])
    model = EdgeNet(ResNetTrunk(spec))
    model.load_state_dict(payload["model"])
    return model.eval(), payload
