"""The CAM network: a ResNet trunk and a 1x1 classifier whose weights, applied per pixel, give the class maps.

- ``logits``: global average pooling then the classifier (IRNet's baseline, PuzzleCAM).
- ``cams``: ReLU of the classifier applied to the feature map (what ``make_cams`` stores).
- ``activation_maps``: sigmoid of the classifier per pixel, the soft masks CLIMS trains (later public code); with
  ``background_channel`` the classifier has a channel 0 for background (the CVPR paper's head).
Input images are in pixel space [0, 1]; ImageNet normalisation happens inside, so CLIMS can mask images in pixel space.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from clims_core.io.checkpoint import load_checkpoint
from clims_core.models.backbone import BackboneSpec, ResNetTrunk, imagenet_normalize


class CamNet(nn.Module):
    def __init__(self, spec: BackboneSpec, n_classes: int, background_channel: bool = False):
        super().__init__()
        self.trunk = ResNetTrunk(spec)
        self.n_classes = n_classes
        self.background_channel = background_channel
        self.classifier = nn.Conv2d(self.trunk.out_channels[-1], n_classes + int(background_channel), 1, bias=False)
        nn.init.xavier_uniform_(self.classifier.weight)

    def features(self, images01: torch.Tensor) -> torch.Tensor:
        """Stage-4 features (output stride 16) of [0, 1] images."""
        return self.trunk(imagenet_normalize(images01))[-1]

    def logits_from(self, features: torch.Tensor) -> torch.Tensor:
        """Image-level class scores: GAP then the classifier (foreground channels only)."""
        pooled = features.mean(dim=(2, 3), keepdim=True)
        return self.classifier(pooled).flatten(1)[:, int(self.background_channel):]

    def maps_from(self, features: torch.Tensor) -> torch.Tensor:
        """Per-pixel classifier scores, foreground channels only: N x K x h x w."""
        return self.classifier(features)[:, int(self.background_channel):]

    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        return self.logits_from(self.features(images01))

    def cams(self, images01: torch.Tensor) -> torch.Tensor:
        """ReLU class activation maps N x K x h x w (unnormalised)."""
        return F.relu(self.maps_from(self.features(images01)))

    def activation_maps_from(self, features: torch.Tensor) -> torch.Tensor:
        """Sigmoid maps in [0, 1]: N x (K [+1]) x h x w; with a background channel it comes first."""
        return torch.sigmoid(self.classifier(features))

    def activation_maps(self, images01: torch.Tensor) -> torch.Tensor:
        return self.activation_maps_from(self.features(images01))

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(pretrained trunk, new head): IRNet trains the head at 10x the learning rate."""
        trunk = [p for p in self.trunk.parameters() if p.requires_grad]
        return trunk, list(self.classifier.parameters())


def load_cam_model(checkpoint_path: str | Path) -> tuple[CamNet, dict]:
    """Rebuild a trained CAM network from its checkpoint (safe load), in eval mode."""
    payload = load_checkpoint(checkpoint_path, required=("model", "config", "step", "architecture"))
    arch = payload["architecture"]
    model = CamNet(BackboneSpec(**arch["backbone"]), arch["n_classes"], arch["background_channel"])
    model.load_state_dict(payload["model"])
    return model.eval(), payload
