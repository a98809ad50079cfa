"""Stage ``train_cam``: train the CAM network with ``cam`` (IRNet's baseline), ``puzzlecam`` or ``clims``.

- ``cam``: multi-label soft-margin loss on globally pooled scores (IRNet).
- ``puzzlecam`` (Jo & Yu, ICIP 2021): the same on the full image and on its 2x2 tiles merged back, plus an L1
  reconstruction between full and merged class maps with PuzzleCAM's alpha schedule.
- ``clims``: initialised from a ``cam`` checkpoint, trained only through a frozen CLIP (see
  :mod:`clims_core.stages.clims_objective`).
SGD with momentum and weight decay in their own places (IRNet's and CLIMS's PolyOptimizer passed weight decay as
SGD's momentum by position; we do not copy that slip), poly decay, the head at 10x the trunk's learning rate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from clims_core.data.classification import ClassificationDataset
from clims_core.data.manifest import Manifest
from clims_core.device import autocast, memory_format, pick_device
from clims_core.io.atomic import write_json
from clims_core.io.checkpoint import load_checkpoint, save_checkpoint
from clims_core.losses.cam import (merge, multilabel_loss, normalised_cams, puzzle_alpha, puzzle_reconstruction_loss,
                                   tile)
from clims_core.models.backbone import BackboneSpec
from clims_core.models.cam_net import CamNet
from clims_core.models.clip import load_clip
from clims_core.stages.clims_objective import ClimsObjective
from clims_core.stages.clims_settings import ClimsSettings
from clims_core.training.schedules import poly
from clims_core.version import code_version

log = logging.getLogger(__name__)
METHODS = ("cam", "puzzlecam", "clims")


@dataclass(frozen=True)
class CamTrainSettings:
    method: str
    backbone: BackboneSpec
    epochs: int = 5
    batch_size: int = 16
    lr: float = 0.1
    weight_decay: float = 1e-4
    momentum: float = 0.9
    head_lr_multiplier: float = 10.0
    crop: int = 512
    resize_long: tuple[int, int] = (320, 640)
    puzzle_alpha: float = 4.0
    puzzle_schedule: float = 0.5
    puzzle_level: str = "feature"  # reconstruction on raw class maps ("feature") or ReLU + max-normalised ("cam")
    clims: ClimsSettings = field(default_factory=ClimsSettings)
    split: str = "train_aug"
    seed: int = 0
    device: str = "auto"
    threads: int = 1
    workers: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"cam method: expected one of {METHODS}, got {self.method!r}")


def build_model(backbone: BackboneSpec, n_classes: int, background_channel: bool = False) -> CamNet:
    return CamNet(backbone, n_classes, background_channel)


def architecture(settings: CamTrainSettings, n_classes: int) -> dict[str, Any]:
    """What ``make_cams`` needs to rebuild the network (stored in the checkpoint)."""
    spec = asdict(settings.backbone) | {"weights": None}
    return {"backbone": spec, "n_classes": n_classes,
            "background_channel": settings.method == "clims" and settings.clims.background_channel}


def load_cam_model(checkpoint_path: str | Path) -> tuple[CamNet, dict]:
    """Rebuild a trained CAM network from its checkpoint (safe load)."""
    payload = load_checkpoint(checkpoint_path, required=("model", "config", "step", "architecture"))
    arch = payload["architecture"]
    model = build_model(BackboneSpec(**arch["backbone"]), arch["n_classes"], arch["background_channel"])
    model.load_state_dict(payload["model"])
    return model.eval(), payload


def initialise_from(model: CamNet, checkpoint_path: str | Path) -> None:
    """CLIMS starts from the CAM baseline: trunk as is, foreground classifier rows copied (background row zero)."""
    cam_model, _ = load_cam_model(checkpoint_path)
    model.trunk.load_state_dict(cam_model.trunk.state_dict())
    with torch.no_grad():
        offset = int(model.background_channel)
        model.classifier.weight.zero_()
        model.classifier.weight[offset:] = cam_model.classifier.weight


def make_optimizer(model: CamNet, settings: CamTrainSettings) -> torch.optim.SGD:
    trunk, head = model.parameter_groups()
    return torch.optim.SGD(
        [{"params": trunk, "lr": settings.lr, "initial_lr": settings.lr},
         {"params": head, "lr": settings.lr * settings.head_lr_multiplier,
          "initial_lr": settings.lr * settings.head_lr_multiplier}],
        lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay,
    )


def cam_step(model: CamNet, images: torch.Tensor, labels: torch.Tensor, **_: Any) -> tuple[torch.Tensor, dict]:
    loss = multilabel_loss(model(images), labels)
    return loss, {"cls": loss.item()}


def puzzlecam_step(model: CamNet, images: torch.Tensor, labels: torch.Tensor, step: int, total: int,
                   settings: CamTrainSettings, **_: Any) -> tuple[torch.Tensor, dict]:
    features = model.features(images)
    tile_features = model.features(tile(images))
    full_maps = model.maps_from(features)
    merged_maps = model.maps_from(merge(tile_features, images.shape[0]))
    cls = multilabel_loss(model.logits_from(features), labels)
    puzzle_cls = multilabel_loss(merged_maps.mean(dim=(2, 3)), labels)
    if settings.puzzle_level == "cam":
        reconstruction = puzzle_reconstruction_loss(normalised_cams(full_maps), normalised_cams(merged_maps), labels)
    else:
        reconstruction = puzzle_reconstruction_loss(full_maps, merged_maps, labels)
    alpha = puzzle_alpha(step, total, settings.puzzle_alpha, settings.puzzle_schedule)
    loss = cls + puzzle_cls + alpha * reconstruction
    return loss, {"cls": cls.item(), "pcls": puzzle_cls.item(), "re": reconstruction.item(), "alpha": alpha}


def clims_step(model: CamNet, images: torch.Tensor, labels: torch.Tensor, objective: ClimsObjective,
               **_: Any) -> tuple[torch.Tensor, dict]:
    maps = model.activation_maps(images)[:, int(model.background_channel):]
    return objective(images, maps.float(), labels)


STEPS = {"cam": cam_step, "puzzlecam": puzzlecam_step, "clims": clims_step}


def run(settings: CamTrainSettings, manifest_path: str | Path, checkpoint_path: str | Path, metrics_path: str | Path,
        init_checkpoint: str | Path | None = None, clip: tuple[str | None, str | None] | None = None,
        config: dict | None = None) -> dict:
    """Train and write the checkpoint (with the architecture) and a metrics JSON (loss parts per epoch)."""
    start = time.perf_counter()
    device = pick_device(settings.device, settings.threads)
    torch.manual_seed(settings.seed)
    manifest = Manifest.load(manifest_path)
    dataset = ClassificationDataset(manifest, settings.split, settings.crop, settings.resize_long, True, settings.seed)
    model = build_model(settings.backbone, len(manifest.classes),
                        settings.method == "clims" and settings.clims.background_channel)
    objective = None
    if settings.method == "clims":
        if init_checkpoint is None or clip is None:
            raise ValueError("clims training needs the cam checkpoint (init_checkpoint) and a CLIP (clip)")
        initialise_from(model, init_checkpoint)
        loaded = load_clip(clip[0], clip[1], device).freeze()
        objective = ClimsObjective(loaded, manifest.classes, settings.clims)
        log.info("CLIMS with %s; prompts %s", loaded.source, objective.prompts)
    model = model.to(device, memory_format=memory_format(device)).train()
    optimizer = make_optimizer(model, settings)
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, drop_last=True, generator=generator,
                        num_workers=settings.workers, persistent_workers=settings.workers > 0)
    total = settings.epochs * len(loader)
    history: list[dict[str, float]] = []
    step = 0
    for epoch in range(settings.epochs):
        dataset.set_epoch(epoch)
        parts_sum: dict[str, float] = {}
        bar = tqdm(loader, desc=f"train_cam[{settings.method}] epoch {epoch + 1}/{settings.epochs}", unit="batch",
                   mininterval=2.0)
        for images, labels, _ in bar:
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * poly(step, total)
            images = images.to(device, memory_format=memory_format(device))
            labels = labels.to(device)
            with autocast(device):
                loss, parts = STEPS[settings.method](model, images, labels, step=step, total=total,
                                                     settings=settings, objective=objective)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            parts = {"loss": loss.item(), **parts}
            for key, value in parts.items():
                parts_sum[key] = parts_sum.get(key, 0.0) + value
            bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items() if k in ("loss", "otm", "btm", "cbs", "re")})
        history.append({key: value / len(loader) for key, value in parts_sum.items()})
        log.info("epoch %d/%d: %s", epoch + 1, settings.epochs, {k: round(v, 4) for k, v in history[-1].items()})
    model = model.cpu().eval()
    metrics = {"method": settings.method, "code_version": code_version(), "steps": step, "history": history,
               "seconds": time.perf_counter() - start, "images": len(dataset)}
    save_checkpoint(checkpoint_path, model.state_dict(), config or {}, step,
                    architecture=architecture(settings, len(manifest.classes)), metrics=metrics)
    write_json(metrics_path, metrics)
    return metrics


def settings_from_config(method: str, cam: dict, clims: dict | None, clip_section: dict, seed: int, device: str,
                         threads: int) -> CamTrainSettings:
    """Config sections -> settings. ``clims`` is ``cam.clims`` already resolved against its preset."""
    backbone = BackboneSpec(**cam["backbone"], weights=cam["backbone_weights"])
    train = cam["train"]
    common = dict(method=method, backbone=backbone, weight_decay=train["weight_decay"], momentum=train["momentum"],
                  crop=train["crop"], resize_long=tuple(train["resize_long"]), seed=seed, device=device,
                  threads=threads, workers=train["workers"])
    if method != "clims":
        return CamTrainSettings(epochs=train["epochs"], batch_size=train["batch_size"], lr=train["lr"],
                                puzzle_alpha=cam["puzzlecam"]["alpha"], puzzle_schedule=cam["puzzlecam"]["schedule"],
                                puzzle_level=cam["puzzlecam"]["level"],
                                **common)
    objective = ClimsSettings(
        loss_weights=tuple(clims["loss_weights"]), background_channel=clims["background_channel"],
        background_words=clims["background_words"], cbs_threshold=clims["cbs_threshold"],
        cbs_reduction=clims["cbs_reduction"], class_weights=dict(clims["class_weights"]),
        similarity=clims["similarity"], masking=clims["masking"], area=clims["area"], object_prompt=clip_section["prompts"]["object"],
        background_prompt=clip_section["prompts"]["stuff"], class_names=dict(clip_section["class_names"]),
    )
    return CamTrainSettings(epochs=clims["epochs"], batch_size=clims["batch_size"], lr=clims["lr"], clims=objective,
                            **common)
