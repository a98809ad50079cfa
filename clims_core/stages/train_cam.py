"""Stage ``train_cam``: train the CAM network with ``cam`` (IRNet's baseline), ``puzzlecam`` or ``clims``.

Each method's objective is its own module, imported by name (:func:`method_module`): ``clims_core.methods.cam``
(IRNet's baseline), ``.puzzlecam`` and ``.clims`` (initialised from a ``cam`` checkpoint, trained through a frozen
CLIP).
SGD with momentum and weight decay in their own places (IRNet's and CLIMS's PolyOptimizer passed weight decay as
SGD's momentum by position; we do not copy that slip), poly decay, the head at 10x the trunk's learning rate.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from clims_core.checks import require_one_of
from clims_core.data.classification import ClassificationDataset
from clims_core.data.manifest import Manifest
from clims_core.io.checkpoint import save_checkpoint
from clims_core.models.backbone import BackboneSpec
from clims_core.models.cam_net import CamNet, load_cam_model
from clims_core.tags import canonical_json
from clims_core.training.loop import EpochPlan, LoopSettings, LossStep, ResumeState, train_loop
from clims_core.training.optim import grouped_sgd
from clims_core.training.runtime import TrainingRuntime, finish_training, ready_to_train, runtime_arguments
from clims_core.training.schedules import poly
from clims_core.version import code_version

log = logging.getLogger(__name__)
METHODS = ("cam", "puzzlecam", "clims")


@dataclass(frozen=True)
class CamTrainSettings(TrainingRuntime):
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
    clims: Any = None  # the ClimsSettings (clims_core.methods.clims_settings) of method clims; not imported here
    split: str = "train_aug"

    def __post_init__(self) -> None:
        require_one_of("cam method", self.method, METHODS)


def build_model(backbone: BackboneSpec, n_classes: int, background_channel: bool = False) -> CamNet:
    return CamNet(backbone, n_classes, background_channel)


def architecture(settings: CamTrainSettings, n_classes: int) -> dict[str, Any]:
    """What ``make_cams`` needs to rebuild the network (stored in the checkpoint)."""
    spec = asdict(settings.backbone) | {"weights": None}
    return {"backbone": spec, "n_classes": n_classes,
            "background_channel": settings.method == "clims" and settings.clims.background_channel}


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
    return grouped_sgd([(trunk, settings.lr), (head, settings.lr * settings.head_lr_multiplier)], settings.momentum,
                       settings.weight_decay)


def method_module(method: str) -> ModuleType:
    """The method's module (``clims_core.methods.<method>``), imported by name: each training's rerun trigger then
    holds its own method's code only (clims_core.version.stage_code_version), not the other methods'."""
    return importlib.import_module(f"clims_core.methods.{method}")


def run(settings: CamTrainSettings, manifest_path: str | Path, checkpoint_path: str | Path, metrics_path: str | Path,
        init_checkpoint: str | Path | None = None, clip: tuple[str | None, str | None] | None = None,
        config: dict | None = None, resume_path: str | Path | None = None) -> dict:
    """Train and write the checkpoint (with the architecture) and a metrics JSON (loss parts per epoch).

    Under ``torchrun`` each process trains on its share of every global batch (DDP); ``resume_path`` is the step
    checkpoint in the work folder that a killed run continues from.
    """
    start = time.perf_counter()
    dist, device = settings.start()
    manifest = Manifest.load(manifest_path)
    dataset = ClassificationDataset(manifest, settings.split, settings.crop, settings.resize_long, True, settings.seed)
    model = build_model(settings.backbone, len(manifest.classes),
                        settings.method == "clims" and settings.clims.background_channel)
    if init_checkpoint is not None:
        initialise_from(model, init_checkpoint)
    model = ready_to_train(model, dist, device)
    objective = method_module(settings.method).make_objective(model, settings, manifest.classes, device,
                                                              init_checkpoint, clip)
    optimizer = make_optimizer(model, settings)
    source = EpochPlan(dataset, settings.batch_size, settings.seed, settings.workers, f"train_cam[{settings.method}]")
    identity = canonical_json([asdict(settings), str(init_checkpoint), clip, code_version()])
    resume = ResumeState(resume_path, identity)
    history, steps = train_loop(LossStep(objective, device, dist, settings.precision), model, optimizer, source,
                                LoopSettings(settings.epochs, settings.checkpoint_every), device, dist,
                                resume, f"train_cam[{settings.method}]", poly,
                                shown=("loss", "otm", "btm", "cbs", "cls", "re"))
    metrics = {"method": settings.method, "code_version": code_version(), "steps": steps, "history": history,
               "seconds": time.perf_counter() - start, "images": len(dataset), "processes": dist.world_size}
    return finish_training(dist, resume, lambda: save_checkpoint(
        checkpoint_path, model.cpu().state_dict(), config or {}, steps,
        architecture=architecture(settings, len(manifest.classes)), metrics=metrics), metrics_path, metrics)


def run_from_arguments(arguments: dict[str, Any]) -> dict:
    """The rule's call as plain values (what the adapter passes, or each torchrun process reads from JSON)."""
    a = arguments
    settings = settings_from_config(a["method"], a["cam"], a.get("clims"), **runtime_arguments(a))
    section = {"method": a["method"], "cam": a["cam"], **({"clims": a["clims"]} if a["method"] == "clims" else {})}
    return run(settings, a["manifest"], a["checkpoint"], a["metrics"], init_checkpoint=a.get("init"),
               clip=tuple(a["clip"]) if a["method"] == "clims" else None, config=section, resume_path=a.get("resume"))


def settings_from_config(method: str, cam: dict, clims: dict | None, **runtime: Any) -> CamTrainSettings:
    """Config sections -> settings. ``clims`` is ``cam.clims`` already resolved against its preset (CLIMS's prompts
    are its own keys there, not ``clip.prompts``: those are eval_clip's)."""
    backbone = BackboneSpec(**cam["backbone"], weights=cam["backbone_weights"])
    train = cam["train"]
    common = dict(method=method, backbone=backbone, weight_decay=train["weight_decay"], momentum=train["momentum"],
                  crop=train["crop"], resize_long=tuple(train["resize_long"]), workers=train["workers"], **runtime)
    if method != "clims":
        puzzle = cam.get("puzzlecam")  # only puzzlecam's rule passes its knobs
        puzzle_knobs = dict(puzzle_alpha=puzzle["alpha"], puzzle_schedule=puzzle["schedule"],
                            puzzle_level=puzzle["level"]) if puzzle else {}
        return CamTrainSettings(epochs=train["epochs"], batch_size=train["batch_size"], lr=train["lr"], **puzzle_knobs,
                                **common)
    objective = method_module("clims").settings_from_config(clims)
    return CamTrainSettings(epochs=clims["epochs"], batch_size=clims["batch_size"], lr=clims["lr"], clims=objective,
                            **common)
