"""Stage ``train_seg``: semi-supervised segmentation with CCT on the pixel-labeled subset and the image-level set.

Runs (the seed paper's supplementary A.2, Table 1):
- ``cct_labeled``: supervised loss on the pixel-labeled ``train`` split plus consistency on the image-level images
  (``train_aug`` minus ``train``), no pseudo masks;
- ``cct_weak_<method>``: the same plus CCT's weak-label loss against the refined pseudo masks of a CAM method.

Optimisation as CCT on VOC: SGD (momentum 0.9, weight decay 1e-4), learning rate 1e-2 for the new modules (PSP and
decoders) and a tenth of it for the pretrained trunk, poly decay over all steps; an epoch is one pass over the
image-level set (batches of 10 + 10), the pixel-labeled set is cycled. The trunk starts from ImageNet weights (VOC),
from the plain CAM network's trunk (the demo's stand-in for ImageNet pretraining), or from random init.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from clims_core.data.manifest import Manifest
from clims_core.data.segmentation import (AugmentSettings, PassSampler, PseudoMaskIndex, SegmentationDataset,
                                          image_level_ids, split_paths)
from clims_core.device import autocast
from clims_core.io.checkpoint import save_checkpoint
from clims_core.models.backbone import BackboneSpec
from clims_core.models.cct import CCT, DEFAULT_DECODERS, CctSpec, EncoderSpec, PerturbationSettings
from clims_core.models.segmentation import architecture_of, check_trunk_init, initialise_trunk_from_cam
from clims_core.methods.cct_objective import CctLossSettings, cct_step
from clims_core.tags import canonical_json
from clims_core.training import distributed
from clims_core.training.loop import LoopSettings, PairedStreams, ResumeState, train_loop
from clims_core.training.optim import grouped_sgd
from clims_core.training.runtime import TrainingRuntime, finish_training, ready_to_train, runtime_arguments
from clims_core.training.schedules import poly
from clims_core.version import code_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegTrainSettings(TrainingRuntime):
    run: str
    encoder: EncoderSpec
    init: str = "imagenet"  # imagenet (encoder.backbone.weights), cam (a CAM checkpoint's trunk) or random
    decoders: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_DECODERS))
    decoder: str = "subpixel"
    perturbations: PerturbationSettings = field(default_factory=PerturbationSettings)
    losses: CctLossSettings = field(default_factory=CctLossSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    epochs: int = 80  # passes over the image-level set
    batch_labeled: int = 10
    batch_unlabeled: int = 10
    lr: float = 0.01
    backbone_lr_multiplier: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    pixel_split: str = "train"
    image_split: str = "train_aug"

    def __post_init__(self) -> None:
        check_trunk_init(self.init, self.encoder.backbone.weights)


def build_model(settings: SegTrainSettings, n_classes: int, init_checkpoint: str | Path | None = None) -> CCT:
    """The network with its trunk initialised as ``settings.init`` says (ImageNet weights load in the trunk itself)."""
    encoder = settings.encoder if settings.init == "imagenet" else \
        replace(settings.encoder, backbone=replace(settings.encoder.backbone, weights=None))
    model = CCT(CctSpec(encoder, n_classes, dict(settings.decoders), settings.perturbations, settings.decoder))
    if settings.init == "cam":
        initialise_trunk_from_cam(model, init_checkpoint)
    return model


def make_optimizer(model: CCT, settings: SegTrainSettings) -> torch.optim.SGD:
    trunk, rest = model.parameter_groups()
    return grouped_sgd([(trunk, settings.lr * settings.backbone_lr_multiplier), (rest, settings.lr)],
                       settings.momentum, settings.weight_decay)


class CctStep:
    """One CCT step on a (pixel-labeled, image-level) pair of batches. :func:`cct_step` runs several backward passes
    (to bound memory), which DDP's hooks do not allow, so gradients are averaged over processes afterwards."""

    def __init__(self, model: CCT, losses: CctLossSettings, weak: bool, device: torch.device,
                 dist: distributed.Distributed, precision: str = "auto"):
        self.model, self.losses, self.weak, self.device, self.dist = model, losses, weak, device, dist
        self.precision = precision

    def __call__(self, batch: tuple, step: int, total: int) -> dict[str, float]:
        (images_l, target_l, _), (images_u, target_u, _) = batch
        with autocast(self.device, self.precision):
            parts = cct_step(self.model, images_l, target_l, images_u, target_u if self.weak else None, step, total,
                             self.losses)
        self.dist.average_gradients(self.model)
        return parts


def run(settings: SegTrainSettings, manifest_path: str | Path, checkpoint_path: str | Path, metrics_path: str | Path,
        pseudo_index: str | Path | None = None, init_checkpoint: str | Path | None = None,
        config: dict | None = None, resume_path: str | Path | None = None) -> dict:
    """Train; write the checkpoint (with the architecture) and a metrics JSON (loss parts per epoch, set sizes).

    Under ``torchrun`` each process trains on its share of both global batches; ``resume_path`` is the step checkpoint
    in the work folder that a killed run continues from."""
    start = time.perf_counter()
    manifest = Manifest.load(manifest_path)
    n_classes = len(manifest.classes)
    _, labeled_images, labeled_masks = split_paths(manifest, settings.pixel_split, with_masks=True)
    unlabeled_ids = image_level_ids(manifest, settings.image_split, settings.pixel_split)
    if len(unlabeled_ids) < settings.batch_unlabeled or len(labeled_images) < settings.batch_labeled:
        raise ValueError(f"{manifest_path}: {len(labeled_images)} pixel-labeled and {len(unlabeled_ids)} image-level "
                         f"images; need at least one batch of each ({settings.batch_labeled} + "
                         f"{settings.batch_unlabeled})")
    pseudo_paths = None
    if pseudo_index is not None:  # checked before any training
        pseudo_paths = PseudoMaskIndex.load(pseudo_index).paths_for(unlabeled_ids, manifest.classes)
    if settings.init == "cam" and init_checkpoint is None:
        raise ValueError("seg.init cam needs the CAM checkpoint (init_checkpoint)")

    dist, device = settings.start()
    model = ready_to_train(build_model(settings, n_classes + 1, init_checkpoint), dist, device)
    optimizer = make_optimizer(model, settings)

    labeled = SegmentationDataset(labeled_images, labeled_masks, n_classes, settings.augment, settings.seed, stream=0)
    unlabeled = SegmentationDataset([manifest.image_path(i) for i in unlabeled_ids], pseudo_paths, n_classes,
                                    settings.augment, settings.seed, stream=1)
    source = PairedStreams([(labeled, PassSampler(len(labeled), settings.seed, 0), settings.batch_labeled),
                            (unlabeled, PassSampler(len(unlabeled), settings.seed, 1), settings.batch_unlabeled)],
                           settings.workers)
    log.info("%s: %d pixel-labeled + %d image-level images (%s), %d steps, %d auxiliary decoders, on %s x %d",
             settings.run, len(labeled), len(unlabeled), "pseudo masks" if pseudo_paths else "no pseudo masks",
             settings.epochs * source.steps_per_epoch, len(model.aux_decoders), device, dist.world_size)
    identity = canonical_json([asdict(settings), str(pseudo_index), str(init_checkpoint), code_version()])
    resume = ResumeState(resume_path, identity)
    training_step = CctStep(model, settings.losses, pseudo_paths is not None, device, dist, settings.precision)
    history, steps = train_loop(training_step, model, optimizer, source,
                                LoopSettings(settings.epochs, settings.checkpoint_every), device, dist, resume,
                                f"train_seg[{settings.run}]",
                                lambda step, total: poly(step, total, settings.poly_power),
                                shown=("loss", "sup", "unsup", "weak"))
    metrics = {"run": settings.run, "method": "cct", "code_version": code_version(), "steps": steps,
               "history": history, "seconds": time.perf_counter() - start, "pixel_labeled": len(labeled),
               "image_labeled": len(unlabeled), "pseudo_masks": str(pseudo_index) if pseudo_index else None,
               "init": settings.init, "aux_decoders": len(model.aux_decoders), "processes": dist.world_size}
    if dist.is_main:
        log.info("%s: %d steps in %.0f s", settings.run, steps, metrics["seconds"])
    return finish_training(dist, resume, lambda: save_checkpoint(
        checkpoint_path, model.cpu().eval().state_dict(), config or {}, steps, architecture=architecture_of(model),
        metrics=metrics), metrics_path, metrics)


def run_from_arguments(arguments: dict[str, Any]) -> dict:
    """The rule's call as plain values (what the adapter passes, or each torchrun process reads from JSON)."""
    a = arguments
    settings = settings_from_config(a["run"], a["seg"], a["cam"], **runtime_arguments(a))
    section = {"run": a["run"], "seg": dict(a["seg"]), "cam_backbone": dict(a["cam"]["backbone"])}
    return run(settings, a["manifest"], a["checkpoint"], a["metrics"], pseudo_index=a.get("pseudo"),
               init_checkpoint=a.get("init"), config=section, resume_path=a.get("resume"))


def settings_from_config(run_name: str, seg: dict, cam: dict, **runtime: Any) -> SegTrainSettings:
    """Config sections -> settings: the trunk's depth, width and norm are ``cam.backbone``'s (so ``seg.init: cam`` fits
    and VOC uses the same ImageNet ResNet), at ``seg.output_stride``."""
    cct, train = seg["cct"], seg["train"]
    backbone = BackboneSpec(**cam["backbone"], weights=cam["backbone_weights"] if seg["init"] == "imagenet" else None)
    # dilation restores the sampling grid the trunk's weights were trained on: ImageNet's or the CAM network's
    pretrained = tuple(cam["backbone"]["strides"]) if seg["init"] == "cam" else (2, 2, 2, 2)
    encoder = EncoderSpec(backbone, seg["output_stride"], tuple(cct["psp_bins"]), pretrained)
    p = cct["perturbations"]
    perturbations = PerturbationSettings(
        vat_xi=p["vat_xi"], vat_eps=p["vat_eps"], vat_iterations=p["vat_iterations"], drop_rate=p["drop_rate"],
        spatial_dropout=p["spatial_dropout"], erase=p["erase"], cutout_regions=p["cutout_regions"],
        cutout_min_points=p["cutout_min_points"], cutout_min_area=p["cutout_min_area"],
        feature_drop_range=tuple(p["feature_drop_range"]), uniform_range=p["uniform_range"])
    losses = CctLossSettings(unsupervised_weight=cct["unsupervised_weight"], rampup=cct["rampup"],
                             weak_weight=cct["weak_weight"], supervised_loss=cct["supervised_loss"])
    augment = AugmentSettings(crop=train["crop"], base_size=train["base_size"],
                              scale_range=tuple(train["scale_range"]), flip=train["flip"])
    return SegTrainSettings(
        run=run_name, encoder=encoder, init=seg["init"], decoders=dict(cct["decoders"]),
        decoder=cct["decoder"],
        perturbations=perturbations, losses=losses, augment=augment, epochs=train["epochs"],
        batch_labeled=train["batch_labeled"], batch_unlabeled=train["batch_unlabeled"], lr=train["lr"],
        backbone_lr_multiplier=train["backbone_lr_multiplier"], momentum=train["momentum"],
        weight_decay=train["weight_decay"], workers=train["workers"], **runtime)
