"""Stage ``train_irn``: IRNet's inter-pixel relation network for semantic masks (its class-boundary branch).

From the IR labels of ``cam_to_ir_label``: every pair of pixels within ``radius`` (at the boundary map's stride 4)
whose both ends are labelled gives an affinity label, positive when the labels agree and negative when they differ;
the boundary branch learns a map whose path maxima separate the negatives and connect the positives
(:mod:`clims_core.losses.irn`). The trunk is frozen, as in IRNet; where it comes from is ``trunk``:

- ``imagenet``: a fresh trunk with ImageNet weights (``cam.backbone`` + ``cam.backbone_weights``), IRNet's choice;
- ``cam``: the trunk of the CAM network of the same method (its checkpoint), for the demo, which has no ImageNet
  weights: a trunk trained on the same images is the best frozen feature extractor available there.

SGD with momentum and weight decay in their own places (IRNet's ``PolyOptimizer`` passed the weight decay into SGD's
momentum slot, i.e. no momentum: ``momentum: 0.0001`` reproduces it), poly decay over all steps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from clims_core.data.manifest import Manifest
from clims_core.device import autocast, memory_format, pick_device
from clims_core.io.atomic import write_json
from clims_core.io.checkpoint import load_checkpoint, save_checkpoint
from clims_core.losses.irn import class_boundary_loss
from clims_core.models.backbone import BackboneSpec, ResNetTrunk
from clims_core.models.irn import EdgeNet
from clims_core.refine.affinity import PairIndex
from clims_core.refine.irn_data import AffinityDataset
from clims_core.refine.mask_folder import MaskFolder
from clims_core.training.schedules import poly
from clims_core.version import code_version

log = logging.getLogger(__name__)
TRUNKS = ("cam", "imagenet")
STRIDE = 4  # the boundary map's (and the CAM store's ``cam``) stride


@dataclass(frozen=True)
class IrnTrainSettings:
    trunk: str = "imagenet"
    backbone: BackboneSpec | None = None  # the ImageNet trunk (trunk == "imagenet")
    epochs: int = 3
    batch_size: int = 32
    crop: int = 512
    scales: tuple[float, ...] = (0.5, 1.0, 1.5)
    lr: float = 0.1
    weight_decay: float = 1e-4
    momentum: float = 0.9
    radius: int = 10
    seed: int = 0
    device: str = "auto"
    threads: int = 1
    workers: int = 0

    def __post_init__(self) -> None:
        if self.trunk not in TRUNKS:
            raise ValueError(f"refine.irn.trunk: expected one of {TRUNKS}, got {self.trunk!r}")
        if self.trunk == "imagenet" and self.backbone is None:
            raise ValueError("refine.irn.trunk imagenet needs the backbone spec (cam.backbone, cam.backbone_weights)")
        if self.crop % 16:
            raise ValueError(f"refine.irn.crop: expected a multiple of 16, got {self.crop}")
        object.__setattr__(self, "scales", tuple(self.scales))


def cam_trunk(cam_checkpoint: str | Path) -> ResNetTrunk:
    """The trunk of a trained CAM network (its ``trunk.*`` weights; the classifier is not needed)."""
    payload = load_checkpoint(cam_checkpoint, required=("model", "config", "step", "architecture"))
    trunk = ResNetTrunk(BackboneSpec(**payload["architecture"]["backbone"]))
    state = {key.removeprefix("trunk."): value for key, value in payload["model"].items() if key.startswith("trunk.")}
    trunk.load_state_dict(state)
    return trunk.eval()


def build_trunk(settings: IrnTrainSettings, cam_checkpoint: str | Path | None) -> ResNetTrunk:
    if settings.trunk == "cam":
        if cam_checkpoint is None:
            raise ValueError("refine.irn.trunk cam needs the CAM network checkpoint of the method")
        return cam_trunk(cam_checkpoint)
    return ResNetTrunk(settings.backbone)


def load_irn_model(checkpoint_path: str | Path) -> tuple[EdgeNet, dict[str, Any]]:
    """Rebuild a trained IRN from its checkpoint (trunk included: the file is self-contained)."""
    payload = load_checkpoint(checkpoint_path, required=("model", "config", "step", "architecture"))
    spec = BackboneSpec(**payload["architecture"]["backbone"])
    model = EdgeNet(ResNetTrunk(spec))
    model.load_state_dict(payload["model"])
    return model.eval(), payload


def train_step(model: EdgeNet, pairs: PairIndex, images: torch.Tensor, labels: torch.Tensor,
               device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
    with autocast(device):
        logits = model(images)
    boundary = torch.sigmoid(logits.float())[:, 0]
    affinity = pairs.affinity(boundary)
    bg_pos, fg_pos, neg = pairs.labels(labels)
    return class_boundary_loss(affinity, bg_pos, fg_pos, neg)


def run(settings: IrnTrainSettings, manifest_path: str | Path, ir_index_path: str | Path,
        checkpoint_path: str | Path, metrics_path: str | Path, cam_checkpoint: str | Path | None = None,
        config: dict | None = None) -> dict[str, Any]:
    """Train the boundary branch; write the checkpoint (with the trunk and its architecture) and a metrics JSON."""
    start = time.perf_counter()
    device = pick_device(settings.device, settings.threads)
    torch.manual_seed(settings.seed)
    manifest = Manifest.load(manifest_path)
    ir_labels = MaskFolder.load(ir_index_path)
    if ir_labels.classes != manifest.classes:
        raise ValueError(f"{ir_index_path}: IR labels of classes {ir_labels.classes}, the manifest has "
                         f"{manifest.classes}")
    dataset = AffinityDataset([manifest.image_path(i) for i in ir_labels.ids],
                              [ir_labels.mask_path(i) for i in ir_labels.ids], settings.crop, settings.scales, STRIDE,
                              True, settings.seed)
    trunk = build_trunk(settings, cam_checkpoint)
    model = EdgeNet(trunk).to(device, memory_format=memory_format(device)).train()
    pairs = PairIndex.build(settings.crop // STRIDE, settings.crop // STRIDE, settings.radius)
    optimizer = torch.optim.SGD(model.branch_parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, drop_last=True, generator=generator,
                        num_workers=settings.workers, persistent_workers=settings.workers > 0)
    if len(loader) == 0:
        raise ValueError(f"{ir_index_path}: {len(dataset)} images, fewer than one batch of {settings.batch_size}")
    total = settings.epochs * len(loader)
    history: list[dict[str, float]] = []
    step = 0
    for epoch in range(settings.epochs):
        dataset.set_epoch(epoch)
        sums: dict[str, float] = {}
        bar = tqdm(loader, desc=f"train_irn epoch {epoch + 1}/{settings.epochs}", unit="batch", mininterval=2.0)
        for images, labels, _ in bar:
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * poly(step, total)
            images = images.to(device, memory_format=memory_format(device))
            loss, parts = train_step(model, pairs, images, labels.to(device), device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            parts = {"loss": loss.item(), **parts}
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.set_postfix({key: f"{value:.3f}" for key, value in parts.items()})
        history.append({key: value / len(loader) for key, value in sums.items()})
        log.info("epoch %d/%d: %s", epoch + 1, settings.epochs, {k: round(v, 4) for k, v in history[-1].items()})
    model = model.cpu().eval()
    metrics = {"trunk": settings.trunk, "code_version": code_version(), "steps": step, "history": history,
               "seconds": time.perf_counter() - start, "images": len(dataset)}
    architecture = {"backbone": asdict(trunk.spec) | {"weights": None}, "crop": settings.crop}
    save_checkpoint(checkpoint_path, model.state_dict(), config or {}, step, architecture=architecture,
                    metrics=metrics)
    write_json(metrics_path, metrics)
    return metrics


def resolve_trunk(trunk: str, backbone_weights: str | None) -> str:
    """``refine.irn.trunk``: ``auto`` is IRNet's ImageNet trunk when there are ImageNet weights, else the CAM trunk."""
    if trunk == "auto":
        return "imagenet" if backbone_weights else "cam"
    return trunk


def settings_from_config(refine: dict, cam: dict, seed: int, device: str, threads: int) -> IrnTrainSettings:
    """Config sections -> settings (``refine.irn``; ``cam.backbone`` and ``cam.backbone_weights`` for imagenet)."""
    irn = refine["irn"]
    trunk = resolve_trunk(irn["trunk"], cam["backbone_weights"])
    backbone = BackboneSpec(**cam["backbone"], weights=cam["backbone_weights"]) if trunk == "imagenet" else None
    return IrnTrainSettings(trunk=trunk, backbone=backbone, epochs=irn["epochs"], batch_size=irn["batch_size"],
                            crop=irn["crop"], scales=tuple(irn["scales"]), lr=irn["lr"],
                            weight_decay=irn["weight_decay"], momentum=irn["momentum"], radius=irn["radius"],
                            seed=seed, device=device, threads=threads, workers=irn["workers"])
