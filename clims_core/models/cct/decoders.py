"""CCT's decoders: the main decoder and the auxiliary decoders, each a perturbation followed by its own upsampler.

Every decoder brings the encoder output to class scores at the input resolution, in one of two ways:

- ``subpixel`` (CCT's paper and code): a 1x1 convolution to the classes, then ``log2(output_stride)`` sub-pixel steps
  (1x1 conv to 4x the channels, ReLU, pixel shuffle x2) started from ICNR (Aitken et al., 2017), i.e. as
  nearest-neighbour upsampling free of checkerboard artefacts. The steps are as wide as the class count, with a ReLU
  in each: 21 channels on VOC, but only 7 on the demo world, where a class whose channel dies is lost (supervised
  probe on the demo world, 180 steps from the same start: 28 mIoU against 47 for ``bilinear``).
- ``bilinear`` (PSPNet's and DeepLab's head): a 1x1 convolution to the classes, then bilinear upsampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from clims_core.checks import require_one_of
from clims_core.models.cct import perturbations as P

DECODERS = ("subpixel", "bilinear")
KINDS = ("vat", "dropout", "cutout", "context_masking", "object_masking", "feature_drop", "feature_noise")


def icnr_(weight: torch.Tensor, scale: int = 2) -> None:
    """ICNR init of a ``(C * scale^2) x C x 1 x 1`` weight: each group of ``scale^2`` output channels that a pixel
    shuffle spreads over one ``scale x scale`` patch starts with the same kernel."""
    out_channels, in_channels, kh, kw = weight.shape
    base = nn.init.kaiming_normal_(torch.zeros(out_channels // scale**2, in_channels, kh, kw))
    with torch.no_grad():
        weight.copy_(base.repeat_interleave(scale**2, dim=0))


class SubPixelUpsample(nn.Sequential):
    """1x1 conv to ``4 C`` channels, ReLU, pixel shuffle: ``N x C x h x w -> N x C x 2h x 2w``."""

    def __init__(self, channels: int):
        conv = nn.Conv2d(channels, channels * 4, kernel_size=1)
        icnr_(conv.weight)
        super().__init__(conv, nn.ReLU(inplace=True), nn.PixelShuffle(2))


class Upsampler(nn.Sequential):
    """The decoder body shared by every CCT decoder: 1x1 conv to the classes, then ``upscale`` x upsampling, by x2
    sub-pixel steps (``subpixel``) or bilinearly (``bilinear``)."""

    def __init__(self, in_channels: int, n_classes: int, upscale: int, kind: str = "subpixel"):
        steps = int(math.log2(upscale))
        if 2**steps != upscale:
            raise ValueError(f"decoder upscale must be a power of 2, got {upscale}")
        require_one_of("decoder", kind, DECODERS)
        if kind == "bilinear":
            super().__init__(nn.Conv2d(in_channels, n_classes, kernel_size=1),
                             nn.Upsample(scale_factor=upscale, mode="bilinear", align_corners=False))
            return
        head = nn.Conv2d(in_channels, n_classes, kernel_size=1, bias=False)
        nn.init.kaiming_normal_(head.weight, nonlinearity="relu")
        super().__init__(head, *(SubPixelUpsample(n_classes) for _ in range(steps)))


@dataclass(frozen=True)
class PerturbationSettings:
    """Strengths of CCT's perturbations (its VOC config's and decoders.py's defaults).

    Guided cutout picks its regions by ``cutout_regions``: ``cct_contours`` (CCT's rule: outer contours of the
    prediction with more than ``cutout_min_points`` points) or ``area`` (regions of at least ``cutout_min_area`` of
    the map, on the features' grid; an earlier rule of this project, kept for comparison).
    """

    vat_xi: float = 1e-6
    vat_eps: float = 2.0
    vat_iterations: int = 1
    drop_rate: float = 0.5
    spatial_dropout: bool = True
    erase: float = 0.4
    cutout_regions: str = "cct_contours"
    cutout_min_points: int = 50
    cutout_min_area: float = 0.002
    feature_drop_range: tuple[float, float] = (0.7, 0.9)
    uniform_range: float = 0.3

    def __post_init__(self) -> None:
        require_one_of("cutout_regions", self.cutout_regions, P.CUTOUT_REGIONS)
        if isinstance(self.cutout_min_points, bool) or not isinstance(self.cutout_min_points, int) \
                or self.cutout_min_points < 0:
            raise ValueError(f"cutout_min_points: expected an integer >= 0, got {self.cutout_min_points!r}")
        low, high = self.feature_drop_range
        if not 0 < low <= high <= 1:
            raise ValueError(f"feature_drop_range: expected 0 < low <= high <= 1, got {self.feature_drop_range!r}")


@dataclass
class Guidance:
    """What the prediction-guided perturbations need from the main decoder, computed once per batch; cutout's regions
    are found on first use and shared by the cutout decoders (each still draws its own rectangles)."""

    foreground: torch.Tensor  # N x 1 x h x w at the features' size
    prediction_foreground: torch.Tensor | None = None  # N x 1 x H x W at the prediction's size (None: ``foreground``)
    _boxes: dict[tuple[str, float], list] = field(default_factory=dict, init=False, repr=False)

    @property
    def prediction_size(self) -> tuple[int, int]:
        return tuple((self.foreground if self.prediction_foreground is None else self.prediction_foreground).shape[-2:])

    def object_boxes(self, min_area: float = 0.002) -> list[list[P.Box]]:
        """The ``area`` rule's boxes, on the features' grid."""
        key = ("area", min_area)
        if key not in self._boxes:
            self._boxes[key] = P.object_boxes(self.foreground, min_area)
        return self._boxes[key]

    def contour_boxes(self, min_points: int = 50) -> list[list[P.PixelBox]]:
        """CCT's boxes, on the prediction's grid."""
        key = ("cct_contours", min_points)
        if key not in self._boxes:
            source = self.foreground if self.prediction_foreground is None else self.prediction_foreground
            self._boxes[key] = P.contour_boxes(source, min_points)
        return self._boxes[key]

    def cutout_mask(self, settings: PerturbationSettings, size: tuple[int, int],
                    device: torch.device | str = "cpu") -> torch.Tensor:
        """``N x 1 x h x w`` guided cutout mask at ``size`` (0 where erased) under ``settings.cutout_regions``."""
        if settings.cutout_regions == "cct_contours":
            return P.contour_cutout_mask(self.contour_boxes(settings.cutout_min_points), self.prediction_size, size,
                                         settings.erase, device)
        return P.cutout_mask(self.object_boxes(settings.cutout_min_area), size, settings.erase, device)


class AuxiliaryDecoder(nn.Module):
    """One perturbation of ``kind`` then an upsampler of its own."""

    def __init__(self, kind: str, in_channels: int, n_classes: int, upscale: int, settings: PerturbationSettings,
                 decoder: str = "subpixel"):
        super().__init__()
        require_one_of("auxiliary decoder kind", kind, KINDS)
        self.kind, self.settings = kind, settings
        self.upsample = Upsampler(in_channels, n_classes, upscale, decoder)

    def perturb(self, x: torch.Tensor, guidance: Guidance) -> torch.Tensor:
        s = self.settings
        if self.kind == "vat":
            with torch.autocast(x.device.type, enabled=False):  # xi = 1e-6 needs fp32
                r_adv = P.vat_perturbation(x.float(), self.upsample, s.vat_xi, s.vat_eps, s.vat_iterations)
                return x + r_adv.to(x.dtype)
        if self.kind == "dropout":
            return P.spatial_dropout(x, s.drop_rate, s.spatial_dropout)
        if self.kind == "cutout":
            return x * guidance.cutout_mask(s, tuple(x.shape[-2:]), x.device).to(x.dtype)
        if self.kind == "context_masking":
            return P.context_masking(x, guidance.foreground)
        if self.kind == "object_masking":
            return P.object_masking(x, guidance.foreground)
        if self.kind == "feature_drop":
            return P.feature_dropout(x, *s.feature_drop_range)
        return P.feature_noise(x, s.uniform_range)

    def forward(self, x: torch.Tensor, guidance: Guidance) -> torch.Tensor:
        return self.upsample(self.perturb(x, guidance))
