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
from torch import nn

from clims_core.checks import require_one_of
from clims_core.data.manifest import Manifest
from clims_core.io.cam_store import STRIDE  # the boundary map's stride is the CAM store's
from clims_core.io.checkpoint import load_checkpoint, save_checkpoint
from clims_core.losses.irn import class_boundary_loss
from clims_core.models.backbone import BackboneSpec, ResNetTrunk
from clims_core.models.irn import EdgeNet
from clims_core.refine.affinity import PairIndex
from clims_core.refine.irn_data import AffinityDataset, check_scale_range
from clims_core.refine.mask_folder import MaskFolder
from clims_core.tags import canonical_json
from clims_core.training import distributed
from clims_core.training.loop import EpochPlan, LoopSettings, LossStep, ResumeState, train_loop
from clims_core.training.optim import grouped_sgd
from clims_core.training.runtime import TrainingRuntime, finish_training, ready_to_train, runtime_arguments
from clims_core.training.schedules import poly
from clims_core.version import code_version

log = logging.getLogger(__name__)
TRUNKS = ("cam", "imagenet")


@dataclass(frozen=True)
class IrnTrainSettings(TrainingRuntime):
    trunk: str = "imagenet"
    backbone: BackboneSpec | None = None  # the ImageNet trunk (trunk == "imagenet")
    epochs: int = 3
    batch_size: int = 32
    crop: int = 512
    scale_range: tuple[float, float] = (0.5, 1.5)  # IRNet's rescale=(0.5, 1.5): a uniform draw per crop
    lr: float = 0.1
    weight_decay: float = 1e-4
    momentum: float = 0.9
    radius: int = 10

    def __post_init__(self) -> None:
        require_one_of("refine.irn.trunk", self.trunk, TRUNKS)
        if self.trunk == "imagenet" and self.backbone is None:
            raise ValueError("refine.irn.trunk imagenet needs the backbone spec (cam.backbone, cam.backbone_weights)")
        if self.crop % 16:
            raise ValueError(f"refine.irn.crop: expected a multiple of 16, got {self.crop}")
        check_scale_range(self.scale_range)
        object.__setattr__(self, "scale_range", tuple(self.scale_range))


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


class IrnObjective(nn.Module):
    """The class-boundary loss of a batch: boundary map -> path affinities -> IRNet's bg_pos / fg_pos / neg terms."""

    def __init__(self, model: EdgeNet, pairs: PairIndex, dist: distributed.Distributed | None = None):
        super().__init__()
        self.model, self.pairs, self.dist = model, pairs, dist or distributed.Distributed()

    def forward(self, images: torch.Tensor, labels: torch.Tensor, step: int, total: int) -> tuple[torch.Tensor, dict]:
        boundary = torch.sigmoid(self.model(images).float())[:, 0]
        affinity = self.pairs.affinity(boundary)
        bg_pos, fg_pos, neg = self.pairs.labels(labels)
        # pair counts of the global batch, so n processes give one process's gradient (see class_boundary_loss)
        return class_boundary_loss(affinity, bg_pos, fg_pos, neg, self.dist.total, self.dist.world_size)


def run(settings: IrnTrainSettings, manifest_path: str | Path, ir_index_path: str | Path,
        checkpoint_path: str | Path, metrics_path: str | Path, cam_checkpoint: str | Path | None = None,
        config: dict | None = None, resume_path: str | Path | None = None) -> dict[str, Any]:
    """Train the boundary branch; write the checkpoint (with the trunk and its architecture) and a metrics JSON.

    Under ``torchrun`` each process trains on its share of every global batch (DDP); ``resume_path`` is the step
    checkpoint in the work folder that a killed run continues from."""
    start = time.perf_counter()
    dist, device = settings.start()
    manifest = Manifest.load(manifest_path)
    ir_labels = MaskFolder.load(ir_index_path)
    if ir_labels.classes != manifest.classes:
        raise ValueError(f"{ir_index_path}: IR labels of classes {ir_labels.classes}, the manifest has "
                         f"{manifest.classes}")
    dataset = AffinityDataset([manifest.image_path(i) for i in ir_labels.ids],
                              [ir_labels.mask_path(i) for i in ir_labels.ids], settings.crop, settings.scale_range,
                              STRIDE, True, settings.seed)
    source = EpochPlan(dataset, settings.batch_size, settings.seed, settings.workers, f"{ir_index_path}")
    trunk = build_trunk(settings, cam_checkpoint)
    model = ready_to_train(EdgeNet(trunk), dist, device)
    objective = IrnObjective(model, PairIndex.build(settings.crop // STRIDE, settings.crop // STRIDE, settings.radius),
                             dist)
    optimizer = grouped_sgd([(model.branch_parameters(), settings.lr)], settings.momentum, settings.weight_decay)
    identity = canonical_json([asdict(settings), str(ir_index_path), str(cam_checkpoint), code_version()])
    resume = ResumeState(resume_path, identity)
    history, steps = train_loop(LossStep(objective, device, dist, settings.precision), model, optimizer, source,
                                LoopSettings(settings.epochs, settings.checkpoint_every), device, dist,
                                resume, "train_irn", poly)
    metrics = {"trunk": settings.trunk, "code_version": code_version(), "steps": steps, "history": history,
               "seconds": time.perf_counter() - start, "images": len(dataset), "processes": dist.world_size}
    architecture = {"backbone": asdict(trunk.spec) | {"weights": None}, "crop": settings.crop}
    return finish_training(dist, resume, lambda: save_checkpoint(
        checkpoint_path, model.cpu().eval().state_dict(), config or {}, steps, architecture=architecture,
        metrics=metrics), metrics_path, metrics)


def run_from_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The rule's call as plain values (what the adapter passes, or each torchrun process reads from JSON)."""
    a = arguments
    settings = settings_from_config(a["refine"], a["cam"], **runtime_arguments(a))
    section = {"method": a["method"], "irn": dict(a["refine"]["irn"])}
    return run(settings, a["manifest"], a["ir_labels"], a["checkpoint"], a["metrics"],
               cam_checkpoint=a.get("cam_checkpoint"), config=section, resume_path=a.get("resume"))


def resolve_trunk(trunk: str, backbone_weights: str | None) -> str:
    """``refine.irn.trunk``: ``auto`` is IRNet's ImageNet trunk when there are ImageNet weights, else the CAM trunk."""
    if trunk == "auto":
        return "imagenet" if backbone_weights else "cam"
    return trunk


def settings_from_config(refine: dict, cam: dict, **runtime: Any) -> IrnTrainSettings:
    """Config sections -> settings (``refine.irn``; ``cam.backbone`` and ``cam.backbone_weights`` for imagenet)."""
    irn = refine["irn"]
    trunk = resolve_trunk(irn["trunk"], cam["backbone_weights"])
    backbone = BackboneSpec(**cam["backbone"], weights=cam["backbone_weights"]) if trunk == "imagenet" else None
    return IrnTrainSettings(trunk=trunk, backbone=backbone, epochs=irn["epochs"], batch_size=irn["batch_size"],
                            crop=irn["crop"], scale_range=tuple(irn["scale_range"]), lr=irn["lr"],
                            weight_decay=irn["weight_decay"], momentum=irn["momentum"], radius=irn["radius"],
                            workers=irn["workers"], **runtime)
