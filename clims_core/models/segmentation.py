"""Segmentation networks behind one interface (CCT, DeepLab v2 / v3): checkpoint records and whole-image inference.

Both map pixel-space [0, 1] images to logits at the input size and expose ``n_classes`` and ``output_stride``, so
evaluation and ``segment`` treat them alike (:func:`predict_probabilities`). A checkpoint stores ``architecture``
(the spec without a weights path) and rebuilds without any weights file; checkpoints written before DeepLab existed
have no ``method`` and are CCT.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from clims_core.checks import require_one_of
from clims_core.device import autocast, memory_format, pick_device
from clims_core.io.checkpoint import CheckpointError, load_checkpoint
from clims_core.models.backbone import BackboneSpec, ResNetTrunk
from clims_core.models.cam_net import load_cam_model
from clims_core.models.cct import CCT, CctSpec, EncoderSpec, PerturbationSettings
from clims_core.models.deeplab import DeepLab, DeepLabSpec

if TYPE_CHECKING:
    from clims_core.refine.crf import CrfSettings

SegmentationNetwork = CCT | DeepLab
SEG_NETWORKS = ("cct", "deeplab")
TRUNK_INITS = ("imagenet", "cam", "random")  # seg.init: ImageNet weights, the plain CAM network's trunk, or none


def check_trunk_init(init: str, weights: str | None) -> None:
    require_one_of("seg.init", init, TRUNK_INITS)
    if init == "imagenet" and not weights:
        raise ValueError("seg.init imagenet needs backbone weights (cam.backbone_weights)")


def architecture_of(model: SegmentationNetwork) -> dict[str, Any]:
    """The record a checkpoint keeps to rebuild ``model`` (the trunk's weights path dropped: the weights are saved)."""
    spec = asdict(model.spec)
    backbone = spec["encoder"]["backbone"] if isinstance(model, CCT) else spec["backbone"]
    backbone["weights"] = None
    return {"method": "cct" if isinstance(model, CCT) else "deeplab", **spec}


def network_from_architecture(arch: dict[str, Any]) -> SegmentationNetwork:
    method = arch.get("method", "cct")
    if method == "deeplab":
        return DeepLab(DeepLabSpec(BackboneSpec(**arch["backbone"]), arch["n_classes"], arch["output_stride"],
                                   tuple(arch["rates"]), tuple(arch["pretrained_strides"]), arch.get("head", "v2")))
    if method != "cct":
        raise ValueError(f"checkpoint architecture: unknown segmentation method {method!r} (expected {SEG_NETWORKS})")
    encoder = arch["encoder"]
    perturbations = dict(arch["perturbations"])
    perturbations["feature_drop_range"] = tuple(perturbations["feature_drop_range"])
    return CCT(CctSpec(EncoderSpec(BackboneSpec(**encoder["backbone"]), encoder["output_stride"],
                                   tuple(encoder["bins"]), tuple(encoder["pretrained_strides"])),
                       arch["n_classes"], dict(arch["decoders"]), PerturbationSettings(**perturbations),
                       arch["decoder"]))


def load_seg_model(checkpoint_path: str | Path) -> tuple[SegmentationNetwork, dict]:
    """Rebuild a trained segmentation network from its checkpoint (safe load), in eval mode."""
    payload = load_checkpoint(checkpoint_path, required=("model", "config", "step", "architecture"))
    with torch.device("meta"):  # no random initialisation of weights the checkpoint replaces (a third of the load)
        model = network_from_architecture(payload["architecture"])
    model.load_state_dict(payload["model"], assign=True)
    left = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]
    if left:
        raise CheckpointError(f"{checkpoint_path}: tensors the checkpoint does not hold and the network does not "
                              f"build: {left[:5]}")
    return model.eval(), payload


def load_for_inference(checkpoint_path: str | Path, classes: list[str], device_setting: str = "auto",
                       threads: int = 1) -> tuple[SegmentationNetwork, dict, torch.device]:
    """A trained network on its device, after checking it predicts the dataset's classes (+ background)."""
    model, payload = load_seg_model(checkpoint_path)
    if model.n_classes != len(classes) + 1:
        raise ValueError(f"{checkpoint_path}: network has {model.n_classes - 1} classes, the dataset {len(classes)}")
    device = pick_device(device_setting, threads)
    return model.to(device, memory_format=memory_format(device)), payload, device


def trunk_of(model: SegmentationNetwork) -> ResNetTrunk:
    """The ResNet trunk that an ImageNet-style initialisation loads (CCT keeps it in its encoder)."""
    return model.encoder.trunk if isinstance(model, CCT) else model.trunk


def pretrained_strides_of(model: SegmentationNetwork) -> tuple[int, int, int, int]:
    return model.spec.encoder.pretrained_strides if isinstance(model, CCT) else model.spec.pretrained_strides


def initialise_trunk_from_cam(model: SegmentationNetwork, checkpoint_path: str | Path) -> None:
    """Copy a CAM network's trunk (same depth, width and norm; strides and dilation do not change the weights), the
    demo's stand-in for ImageNet weights (``seg.init: cam``)."""
    cam_model, _ = load_cam_model(checkpoint_path)
    cam_spec, own = cam_model.trunk.spec, trunk_of(model).spec
    if (cam_spec.depth, cam_spec.width, cam_spec.norm) != (own.depth, own.width, own.norm):
        raise ValueError(f"{checkpoint_path}: CAM trunk resnet{cam_spec.depth} width {cam_spec.width} "
                         f"norm {cam_spec.norm} does not fit the segmentation trunk resnet{own.depth} width "
                         f"{own.width} norm {own.norm} (seg.init: cam takes cam.backbone)")
    if tuple(cam_spec.strides) != pretrained_strides_of(model):
        raise ValueError(f"{checkpoint_path}: CAM trunk strides {tuple(cam_spec.strides)}, but the network's dilation "
                         f"assumes {pretrained_strides_of(model)}")
    trunk_of(model).load_state_dict(cam_model.trunk.state_dict())


def _full_size_logits(model: SegmentationNetwork, image: torch.Tensor, scale: float, flip: bool,
                      device: torch.device, precision: str) -> torch.Tensor:
    """``1 x C x H x W`` logits of a ``1 x 3 x H x W`` image on ``device`` at one scale (``2 x ...`` with its mirrored
    copy, still mirrored), padded to the output stride, cropped and upsampled back to the image's size."""
    stride = model.output_stride
    height, width = image.shape[-2:]
    x = image if scale == 1.0 else F.interpolate(image, scale_factor=scale, mode="bilinear", align_corners=False)
    h, w = x.shape[-2:]
    if flip:  # mirrored before padding, so the padding is on the right of both and one crop fits both
        x = torch.cat([x, x.flip(-1)])
    pad_h, pad_w = math.ceil(h / stride) * stride - h, math.ceil(w / stride) * stride - w
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if pad_h < h and pad_w < w else "replicate")
    with autocast(device, precision):
        logits = model(x.contiguous(memory_format=memory_format(device))).float()[..., :h, :w]
    if logits.shape[-2:] != (height, width):
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    return logits


@torch.no_grad()
def predict_probabilities(model: SegmentationNetwork, image: torch.Tensor, scales: tuple[float, ...], flip: bool,
                          device: torch.device, precision: str = "auto") -> torch.Tensor:
    """Summed softmax ``C x H x W`` of a ``3 x H x W`` [0, 1] image over scales (and mirrored copies)."""
    image = image.to(device)[None]
    total = torch.zeros(model.n_classes, *image.shape[-2:], device=device)
    for scale in scales:
        probs = F.softmax(_full_size_logits(model, image, scale, flip, device, precision), dim=1)
        total += probs[0] + (probs[1].flip(-1) if flip else 0)
    return total


def first_max(planes: torch.Tensor) -> torch.Tensor:
    """Index of the largest plane per pixel of a ``C x H x W`` tensor (the first on ties, as ``argmax``):
    ``max(0).indices``, which on CPU takes a tenth to a fifth of ``argmax(0)``'s time (4.0 vs 0.29 ms at 7 x 128 x 128,
    49 vs 10 ms at 21 x 375 x 500, 2 threads)."""
    return planes.max(0).indices


def predict_labels(model: SegmentationNetwork, image: torch.Tensor, scales: tuple[float, ...], flip: bool,
                   device: torch.device, precision: str = "auto", crf: CrfSettings | None = None) -> np.ndarray:
    """``H x W`` int64 labels of a ``3 x H x W`` [0, 1] image: the argmax of :func:`predict_probabilities`, or, with
    ``crf``, denseCRF with those probabilities as the unary (DeepLab's post-processing)."""
    if crf is None and tuple(scales) == (1.0,) and not flip:
        # One view: the argmax of the logits is that of their softmax, without the softmax and the sum over views.
        with torch.no_grad():
            logits = _full_size_logits(model, image.to(device)[None], 1.0, False, device, precision)
        return first_max(logits[0]).cpu().numpy()
    probabilities = predict_probabilities(model, image, scales, flip, device, precision)
    if crf is None:
        return first_max(probabilities).cpu().numpy()
    from clims_core.refine.crf import ImageCrf  # pydensecrf only when asked for

    pixels = (image.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    mean = (probabilities / probabilities.sum(0, keepdim=True)).cpu().numpy()
    return ImageCrf(pixels, model.n_classes, crf).scores(mean)
