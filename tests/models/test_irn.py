"""IRNet's boundary branch at inference: what ``boundary_map`` feeds the network (padding) and what it returns."""

from __future__ import annotations

import numpy as np
import torch

from clims_core.models.backbone import IMAGENET_MEAN, BackboneSpec, ResNetTrunk, imagenet_normalize
from clims_core.models.irn import EdgeNet, boundary_map

CPU = torch.device("cpu")


def tiny_edge_net() -> EdgeNet:
    torch.manual_seed(0)
    return EdgeNet(ResNetTrunk(BackboneSpec(depth=18, width=8, norm="batch"))).eval()


def test_boundary_map_pads_with_the_normalisations_mean_colour():
    """IRNet pads the normalised input with 0; in pixel space that is the ImageNet mean (0.485, 0.456, 0.406), so the
    padding normalises to exactly 0 and the image region is the image (and its mirror) untouched."""
    model = tiny_edge_net()
    assert model.input_mean == IMAGENET_MEAN
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    image = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 20, 28), dtype=np.uint8))
    boundary = boundary_map(model, image, 64, CPU, "fp32")
    assert boundary.shape == (5, 7) and bool(((boundary > 0) & (boundary < 1)).all())
    (pair,) = seen
    assert pair.shape == (2, 3, 64, 64)
    pixels = image.float() / 255
    assert torch.equal(pair[0, :, :20, :28], pixels) and torch.equal(pair[1, :, :20, :28], pixels.flip(-1))
    pad = torch.ones(64, 64, dtype=torch.bool)
    pad[:20, :28] = False
    for channel, mean in enumerate(IMAGENET_MEAN):
        assert bool((pair[:, channel][:, pad] == torch.tensor(mean)).all())  # right and bottom: the mean colour
    assert imagenet_normalize(pair).permute(1, 0, 2, 3)[:, :, pad].abs().max() < 1e-6


def test_boundary_map_of_an_unpadded_image_needs_no_fill():
    """At the network's multiple and min_size, nothing is padded: the map is the mirrored pair's mean logit."""
    model = tiny_edge_net()
    image = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (3, 32, 32), dtype=np.uint8))
    pixels = image.float()[None] / 255
    logits = model(torch.cat([pixels, pixels.flip(-1)]))[:, 0]
    expected = torch.sigmoid(logits[0] / 2 + logits[1].flip(-1) / 2)
    assert torch.allclose(boundary_map(model, image, 32, CPU, "fp32"), expected, atol=1e-6)
