"""Stage ``train_deeplab``: DeepLabV2 trained on the refined pseudo masks of train_aug alone, no pixel labels.

The last stage of CLIMS's, IRNet's and CLIP-ES's papers (CLIMS: 69.3 val mIoU on VOC from its masks). Optimisation as
DeepLabV2 on VOC: SGD (momentum 0.9, weight decay 5e-4), learning rate 2.5e-4 for the pretrained trunk and 10x for
ASPP, poly decay (power 0.9) over all steps, batch 10, crops of 321 px from randomly scaled images; an epoch is one
pass over train_aug (20 epochs = about 21k steps on VOC's 10,582 images, inside the paper's 20k-30k). Pixels the
refiner left unsure (255) are ignored. The trunk starts as for CCT (``seg.init``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from clims_core.checks import require_one_of
from clims_core.data.manifest import Manifest
from clims_core.data.segmentation import AugmentSettings, PassSampler, PseudoMaskIndex, SegmentationDataset
from clims_core.io.checkpoint import save_checkpoint
from clims_core.losses.segmentation import PSEUDO_MASK_LOSSES, pseudo_mask_loss
from clims_core.models.backbone import BackboneSpec
from clims_core.models.deeplab import DeepLab, DeepLabSpec
from clims_core.models.segmentation import architecture_of, check_trunk_init, initialise_trunk_from_cam
from clims_core.tags import canonical_json
from clims_core.training.loop import LoopSettings, LossStep, PairedStreams, ResumeState, train_loop
from clims_core.training.optim import grouped_sgd
from clims_core.training.runtime import TrainingRuntime, finish_training, ready_to_train, runtime_arguments
from clims_core.training.schedules import poly
from clims_core.version import code_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeepLabTrainSettings(TrainingRuntime):
    run: str
    backbone: BackboneSpec
    init: str = "imagenet"  # imagenet (backbone.weights), cam (a CAM checkpoint's trunk) or random
    output_stride: int = 8
    head: str = "v2"  # v2 (ASPP-L, the papers') or v3 (torchvision's DeepLabHead), see clims_core.models.deeplab
    rates: tuple[int, ...] | None = None  # None: the head's own
    loss: str = "ce"  # ce (DeepLab's) or balanced (see clims_core.losses.segmentation)
    augment: AugmentSettings = field(default_factory=lambda: AugmentSettings(crop=321, base_size=500,
                                                                             scale_range=(0.5, 1.5)))
    epochs: int = 20  # passes over the image split
    batch_size: int = 10
    lr: float = 2.5e-4
    head_lr_multiplier: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    image_split: str = "train_aug"

    def __post_init__(self) -> None:
        check_trunk_init(self.init, self.backbone.weights)
        require_one_of("seg.deeplab.loss", self.loss, PSEUDO_MASK_LOSSES)


class PseudoMaskObjective(nn.Module):
    """``(images, masks, step, total) -> (loss, parts)``: one forward, so DDP sees every parameter's use."""

    def __init__(self, model: DeepLab, loss: str):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, images: torch.Tensor, masks: torch.Tensor, step: int, total: int
                ) -> tuple[torch.Tensor, dict[str, float]]:
        loss = pseudo_mask_loss(self.model(images), masks, self.loss)
        return loss, {}


class SingleStreamStep(LossStep):
    """A :class:`PairedStreams` of one stream yields 1-tuples of ``(images, masks, index)`` batches."""

    def __call__(self, batch: Any, step: int, total: int) -> dict[str, float]:
        return super().__call__(batch[0], step, total)


def build_model(settings: DeepLabTrainSettings, n_classes: int, init_checkpoint: str | Path | None = None
                ) -> DeepLab:
    """The network with its trunk initialised as ``settings.init`` says (ImageNet weights load in the trunk itself);
    from a CAM trunk the dilation restores the CAM network's grid, as for CCT."""
    backbone = settings.backbone if settings.init == "imagenet" else replace(settings.backbone, weights=None)
    pretrained = tuple(settings.backbone.strides) if settings.init == "cam" else (2, 2, 2, 2)
    model = DeepLab(DeepLabSpec(backbone, n_classes, settings.output_stride, settings.rates, pretrained, settings.head))
    if settings.init == "cam":
        initialise_trunk_from_cam(model, init_checkpoint)
    return model


def make_optimizer(model: DeepLab, settings: DeepLabTrainSettings) -> torch.optim.SGD:
    trunk, head = model.parameter_groups()
    return grouped_sgd([(trunk, settings.lr), (head, settings.lr * settings.head_lr_multiplier)], settings.momentum,
                       settings.weight_decay)


def run(settings: DeepLabTrainSettings, manifest_path: str | Path, pseudo_index: str | Path,
        checkpoint_path: str | Path, metrics_path: str | Path, init_checkpoint: str | Path | None = None,
        config: dict | None = None, resume_path: str | Path | None = None) -> dict:
    """Train on the pseudo masks; write the checkpoint (with the architecture) and a metrics JSON."""
    start = time.perf_counter()
    manifest = Manifest.load(manifest_path)
    n_classes = len(manifest.classes)
    ids = manifest.ids(settings.image_split)
    paths = PseudoMaskIndex.load(pseudo_index).paths_for(ids, manifest.classes)  # checked before any training
    if len(ids) < settings.batch_size:
        raise ValueError(f"{manifest_path}: {len(ids)} {settings.image_split} images, fewer than one batch of "
                         f"{settings.batch_size} (seg.deeplab.train.batch_size)")
    if settings.init == "cam" and init_checkpoint is None:
        raise ValueError("seg.init cam needs the CAM checkpoint (init_checkpoint)")

    dist, device = settings.start()
    model = ready_to_train(build_model(settings, n_classes + 1, init_checkpoint), dist, device)
    optimizer = make_optimizer(model, settings)
    dataset = SegmentationDataset([manifest.image_path(i) for i in ids], paths, n_classes, settings.augment,
                                  settings.seed, stream=2)
    source = PairedStreams([(dataset, PassSampler(len(dataset), settings.seed, 2), settings.batch_size)],
                           settings.workers)
    log.info("%s: DeepLabV2 on %d %s pseudo masks, %d steps, on %s x %d", settings.run, len(dataset),
             settings.image_split, settings.epochs * source.steps_per_epoch, device, dist.world_size)
    identity = canonical_json([asdict(settings), str(pseudo_index), str(init_checkpoint), code_version()])
    resume = ResumeState(resume_path, identity)
    step = SingleStreamStep(PseudoMaskObjective(model, settings.loss), device, dist, settings.precision)
    history, steps = train_loop(step, model, optimizer, source, LoopSettings(settings.epochs, settings.checkpoint_every),
                                device, dist, resume, f"train_deeplab[{settings.run}]",
                                lambda s, total: poly(s, total, settings.poly_power))
    metrics = {"run": settings.run, "method": "deeplab", "code_version": code_version(), "steps": steps,
               "history": history, "seconds": time.perf_counter() - start, "pixel_labeled": 0,
               "image_labeled": len(dataset), "pseudo_masks": str(pseudo_index), "init": settings.init,
               "loss": settings.loss, "processes": dist.world_size}
    if dist.is_main:
        log.info("%s: %d steps in %.0f s", settings.run, steps, metrics["seconds"])
    return finish_training(dist, resume, lambda: save_checkpoint(
        checkpoint_path, model.cpu().eval().state_dict(), config or {}, steps, architecture=architecture_of(model),
        metrics=metrics), metrics_path, metrics)


def settings_from_config(run_name: str, seg: dict, cam: dict, **runtime: Any) -> DeepLabTrainSettings:
    """Config sections -> settings: the trunk is ``cam.backbone``'s (width, norm; depth unless
    ``seg.deeplab.backbone_depth`` says another, with its own ImageNet weights), as for CCT."""
    deeplab, train = seg["deeplab"], seg["deeplab"]["train"]
    weights = (deeplab["backbone_weights"] or cam["backbone_weights"]) if seg["init"] == "imagenet" else None
    depth = deeplab["backbone_depth"] or cam["backbone"]["depth"]
    backbone = BackboneSpec(**{**cam["backbone"], "depth": depth}, weights=weights)
    augment = AugmentSettings(crop=train["crop"], base_size=train["base_size"],
                              scale_range=tuple(train["scale_range"]), flip=train["flip"])
    return DeepLabTrainSettings(
        run=run_name, backbone=backbone, init=seg["init"], output_stride=seg["output_stride"],
        head=deeplab["head"], rates=tuple(deeplab["rates"]) if deeplab["rates"] else None, loss=deeplab["loss"],
        augment=augment, epochs=train["epochs"], batch_size=train["batch_size"], lr=train["lr"],
        head_lr_multiplier=train["head_lr_multiplier"], momentum=train["momentum"], weight_decay=train["weight_decay"],
        poly_power=train["poly_power"], workers=train["workers"], **runtime)


def run_from_arguments(arguments: dict[str, Any]) -> dict:
    """The rule's call as plain values (what the adapter passes, or each torchrun process reads from JSON)."""
    a = arguments
    settings = settings_from_config(a["run"], a["seg"], a["cam"], **runtime_arguments(a))
    section = {"run": a["run"], "seg": dict(a["seg"]), "cam_backbone": dict(a["cam"]["backbone"])}
    return run(settings, a["manifest"], a["pseudo"], a["checkpoint"], a["metrics"], init_checkpoint=a.get("init"),
               config=section, resume_path=a.get("resume"))
