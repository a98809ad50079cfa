"""The CCT network: a shared encoder, the main decoder, and auxiliary decoders that each see perturbed features."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from clims_core.checks import require_one_of
from clims_core.models.backbone import imagenet_normalize
from clims_core.models.cct.decoders import DECODERS, KINDS, AuxiliaryDecoder, Guidance, PerturbationSettings, Upsampler
from clims_core.models.cct.encoder import Encoder, EncoderSpec
from clims_core.models.cct.perturbations import foreground_mask

# CCT's VOC defaults: VAT 2, dropout 6, cutout 6, context masking 2, object masking 2, feature drop 6, noise 6.
DEFAULT_DECODERS = {"vat": 2, "dropout": 6, "cutout": 6, "context_masking": 2, "object_masking": 2,
                    "feature_drop": 6, "feature_noise": 6}


@dataclass(frozen=True)
class CctSpec:
    encoder: EncoderSpec
    n_classes: int  # background included
    decoders: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_DECODERS))
    perturbations: PerturbationSettings = field(default_factory=PerturbationSettings)
    decoder: str = "subpixel"  # "subpixel" (CCT) or "bilinear" (see clims_core.models.cct.decoders)

    def __post_init__(self) -> None:
        require_one_of("decoder", self.decoder, DECODERS)
        unknown = sorted(set(self.decoders) - set(KINDS))
        if unknown:
            raise ValueError(f"auxiliary decoders: unknown kinds {unknown} (expected {list(KINDS)})")
        if any(count < 0 for count in self.decoders.values()):
            raise ValueError(f"auxiliary decoder counts must be >= 0, got {self.decoders}")


class CCT(nn.Module):
    """``forward`` gives the main decoder's logits at the input size (inference); training uses the parts."""

    def __init__(self, spec: CctSpec):
        super().__init__()
        self.spec = spec
        self.encoder = Encoder(spec.encoder)
        upscale = spec.encoder.output_stride
        self.main_decoder = Upsampler(self.encoder.out_channels, spec.n_classes, upscale, spec.decoder)
        self.aux_decoders = nn.ModuleList(
            AuxiliaryDecoder(kind, self.encoder.out_channels, spec.n_classes, upscale, spec.perturbations, spec.decoder)
            for kind in KINDS for _ in range(spec.decoders.get(kind, 0)))

    @property
    def n_classes(self) -> int:
        return self.spec.n_classes

    @property
    def output_stride(self) -> int:
        return self.spec.encoder.output_stride

    def features(self, images01: torch.Tensor) -> torch.Tensor:
        """Encoder output of pixel-space [0, 1] images."""
        return self.encoder(imagenet_normalize(images01))

    @staticmethod
    def to_size(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Decoder output resized to the input when the input is not a multiple of the output stride."""
        if logits.shape[-2:] == tuple(size):
            return logits
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        return self.to_size(self.main_decoder(self.features(images01)), images01.shape[-2:])

    def guidance(self, features: torch.Tensor, main_logits: torch.Tensor) -> Guidance:
        """The detached main prediction as the guided perturbations use it: its foreground at the features' size
        (masking, ``area`` cutout) and at its own size (CCT's contours)."""
        full = foreground_mask(main_logits.detach(), tuple(main_logits.shape[-2:]))
        size = tuple(features.shape[-2:])
        small = full if full.shape[-2:] == size else F.interpolate(full, size=size, mode="nearest")
        return Guidance(small, prediction_foreground=full)

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(pretrained trunk, new modules: PSP and decoders); CCT trains the trunk at a tenth of the learning rate."""
        trunk = [p for p in self.encoder.trunk.parameters() if p.requires_grad]
        trunk_ids = {id(p) for p in self.encoder.trunk.parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in trunk_ids]
        return trunk, rest
