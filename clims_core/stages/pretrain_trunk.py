"""Stage ``pretrain_trunk``: pretrain the ResNet trunk on a captions corpus, where there are no ImageNet weights.

On VOC every method starts from an ImageNet ResNet (``cam.backbone_weights``). The demo has no ImageNet, so this stage
stands in for it as ``pretrain_clip`` stands in for CLIP's internet data: multi-label classification of the vocabulary
words (``data.classes`` and ``data.stuff_classes``) each caption names, on the captions corpus only (never a train/val
image), with BCE. Like ImageNet's labels these are noisy: a scene caption that names only its objects leaves its stuff
unnamed (a third of the demo's scene captions do), so the stuff words have missing positives.

The recipe is ImageNet's in miniature: random resized crop and flip (no colour jitter: the demo's classes are partly
defined by colour), SGD with Nesterov momentum, warm-up then cosine decay, trained BatchNorm, torchvision's strides
(2, 2, 2, 2) (what ``seg.init: imagenet`` assumes when it dilates the trunk). A slice of the corpus is held out for the
per-word average precision. The output is a torchvision-layout ResNet state dict (``conv1.weight``, ``bn1.*``,
``layer1.0.conv1.weight``, ...; no ``fc``), which :func:`~clims_core.models.backbone.load_imagenet_weights` reads
like an ImageNet file.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clims_core.data.captions import load_images, read_captions
from clims_core.data.caption_words import CaptionWordsDataset, caption_targets, split_holdout
from clims_core.device import memory_format
from clims_core.io.atomic import atomic_path
from clims_core.metrics.ranking import mean_average_precision
from clims_core.models.backbone import BackboneSpec, ResNetTrunk, imagenet_normalize
from clims_core.tags import canonical_json
from clims_core.training.loop import EpochPlan, LoopSettings, LossStep, ResumeState, train_loop
from clims_core.training.runtime import TrainingRuntime, finish_training, ready_to_train, runtime_arguments
from clims_core.training.schedules import warmup_cosine
from clims_core.version import code_version

log = logging.getLogger(__name__)
TORCHVISION_STRIDES = (2, 2, 2, 2)



@dataclass(frozen=True)
class PretrainTrunkSettings(TrainingRuntime):
    backbone: BackboneSpec  # depth and width are used; pretraining always has trained BatchNorm and ``strides``
    words: tuple[str, ...]  # the vocabulary: object classes, then stuff words
    names: dict[str, str] = field(default_factory=dict)  # word -> how captions write it (diningtable -> dining table)
    epochs: int = 5
    batch_size: int = 64
    lr: float = 0.1
    weight_decay: float = 5e-4
    momentum: float = 0.9
    warmup_steps: int = 50
    image_size: int = 96  # images are loaded at this side; random resized crops are resized back to it
    scale: tuple[float, float] = (0.5, 1.0)  # area share of a random resized crop
    holdout_fraction: float = 0.05
    strides: tuple[int, int, int, int] = TORCHVISION_STRIDES

    def __post_init__(self) -> None:
        if not self.words:
            raise ValueError("pretrain_trunk: the vocabulary (data.classes + data.stuff_classes) is empty")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"cam.pretrain_trunk.scale: expected 0 < low <= high <= 1, got {list(self.scale)}")
        object.__setattr__(self, "words", tuple(self.words))
        object.__setattr__(self, "scale", tuple(self.scale))
        object.__setattr__(self, "strides", tuple(self.strides))

    def spec(self) -> BackboneSpec:
        """The trunk that is pretrained: the configured depth and width, trained BatchNorm, ``strides``."""
        return replace(self.backbone, norm="batch", strides=self.strides, weights=None)


# --- model ------------------------------------------------------------------------------------------------------

class TrunkClassifier(nn.Module):
    """The ResNet trunk (stem trained too), global average pooling and a linear word classifier."""

    def __init__(self, spec: BackboneSpec, n_words: int, prior: np.ndarray | None = None):
        super().__init__()
        self.trunk = ResNetTrunk(spec)
        for param in (*self.trunk.conv1.parameters(), *self.trunk.bn1.parameters()):
            param.requires_grad_(True)  # ResNetTrunk freezes the stem for fine-tuning; pretraining trains it
        self.fc = nn.Linear(self.trunk.out_channels[-1], n_words)
        nn.init.normal_(self.fc.weight, std=0.01)
        with torch.no_grad():  # start at each word's frequency, so early steps do not go into learning the priors
            p = torch.as_tensor(prior if prior is not None else np.full(n_words, 0.5), dtype=torch.float32)
            self.fc.bias.copy_(torch.logit(p.clamp(1e-3, 1 - 1e-3)))

    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        return self.fc(self.trunk(imagenet_normalize(images01))[-1].mean(dim=(2, 3)))


class WordObjective(nn.Module):
    """BCE over every (image, word) pair."""

    def __init__(self, model: TrunkClassifier):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, targets: torch.Tensor, step: int, total: int) -> tuple[torch.Tensor, dict]:
        loss = F.binary_cross_entropy_with_logits(self.model(images).float(), targets.float())
        return loss, {"bce": loss.item()}


def make_optimizer(model: nn.Module, settings: PretrainTrunkSettings) -> torch.optim.SGD:
    """SGD with Nesterov momentum; no weight decay on BatchNorm and biases (ImageNet practice)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay, no_decay = [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": settings.weight_decay, "initial_lr": settings.lr},
         {"params": no_decay, "weight_decay": 0.0, "initial_lr": settings.lr}],
        lr=settings.lr, momentum=settings.momentum, nesterov=settings.momentum > 0)


@torch.no_grad()
def heldout_scores(model: TrunkClassifier, images: torch.Tensor, device: torch.device, batch: int = 128) -> np.ndarray:
    """Sigmoid word scores of whole images (no augmentation), in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch].to(device).float().div_(255).contiguous(memory_format=memory_format(device))
        out.append(torch.sigmoid(model(x).float()).cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, model.fc.out_features), np.float32)


def heldout_metrics(scores: np.ndarray, targets: np.ndarray, words: tuple[str, ...]) -> dict[str, Any]:
    """mAP over the words with a held-out positive, AP per word (null where the held-out slice has none)."""
    if not len(scores):
        return {"map": None, "per_word": {}}
    mean, per_word = mean_average_precision(scores, targets)
    return {"map": None if np.isnan(mean) else 100 * mean,
            "per_word": {w: None if np.isnan(ap) else 100 * ap for w, ap in zip(words, per_word)}}


def save_trunk(path: str | Path, trunk: nn.Module) -> None:
    """The trunk's state dict in torchvision's layout (CPU tensors), written atomically."""
    state = {key: value.detach().cpu().clone() for key, value in trunk.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


# --- the stage ------------------------------------------------------------------------------------------------------

def run(settings: PretrainTrunkSettings, captions_dir: str | Path, weights_path: str | Path,
        metrics_path: str | Path, resume_path: str | Path | None = None) -> dict:
    """Train on the captions corpus at ``captions_dir`` (nothing else is read), write the trunk's state dict and the
    metrics JSON (loss per epoch, held-out AP per word before and after, word frequencies); return the metrics.

    Under ``torchrun`` each process trains on its share of every global batch (DDP); ``resume_path`` is the step
    checkpoint in the work folder that a killed run continues from."""
    start = time.perf_counter()
    dist, device = settings.start()
    pairs = read_captions(captions_dir)
    targets = caption_targets([caption for _, caption in pairs], settings.words, settings.names)
    unnamed = [w for w, n in zip(settings.words, targets.sum(axis=0)) if n == 0]
    if unnamed:
        log.warning("pretrain_trunk: no caption names %s; their outputs learn only 'absent'", unnamed)
    images = torch.from_numpy(load_images([Path(captions_dir) / "images" / f"{i}.jpg" for i, _ in pairs],
                                          settings.image_size, settings.threads))
    train, held = split_holdout(len(pairs), settings.holdout_fraction, settings.seed)
    train_targets = torch.from_numpy(targets[train])
    dataset = CaptionWordsDataset(images[train], train_targets, settings.scale, settings.seed)
    prior = targets[train].mean(axis=0)
    model = TrunkClassifier(settings.spec(), len(settings.words), prior)
    model = ready_to_train(model, dist, device)
    log.info("pretraining resnet%d width %d on %d caption images (%d held out) at %d px on %s x %d; words %s",
             settings.backbone.depth, settings.backbone.width, len(train), len(held), settings.image_size, device,
             dist.world_size, dict(zip(settings.words, targets.sum(axis=0).astype(int).tolist())))
    before = heldout_metrics(heldout_scores(model, images[held], device), targets[held], settings.words)
    optimizer = make_optimizer(model, settings)
    source = EpochPlan(dataset, settings.batch_size, settings.seed, settings.workers, "pretrain_trunk")
    identity = canonical_json([asdict(settings), str(captions_dir), code_version()])
    resume = ResumeState(resume_path, identity)
    warmup = min(settings.warmup_steps, settings.epochs * source.steps_per_epoch // 2)
    history, steps = train_loop(LossStep(WordObjective(model), device, dist, settings.precision), model, optimizer,
                                source, LoopSettings(settings.epochs, settings.checkpoint_every), device, dist, resume,
                                "pretrain_trunk", lambda step, total: warmup_cosine(step, total, warmup),
                                shown=("loss",))
    after = heldout_metrics(heldout_scores(model, images[held], device), targets[held], settings.words)
    metrics = {
        "code_version": code_version(), "pairs": len(pairs), "train_images": len(train), "held_out": len(held),
        "words": list(settings.words), "steps": steps, "loss_per_epoch": [h["loss"] for h in history],
        "word_frequency": {w: float(f) for w, f in zip(settings.words, targets.mean(axis=0))},
        "heldout_positives": {w: int(n) for w, n in zip(settings.words, targets[held].sum(axis=0))},
        "heldout_map": {"before": before["map"], "after": after["map"]},
        "heldout_ap_per_word": {"before": before["per_word"], "after": after["per_word"]},
        "trunk": asdict(settings.spec()), "seconds": time.perf_counter() - start, "processes": dist.world_size,
    }
    if dist.is_main:
        log.info("held-out mAP %.1f -> %.1f; loss %.4f -> %.4f (%.0f s)", before["map"] or 0, after["map"] or 0,
                 metrics["loss_per_epoch"][0], metrics["loss_per_epoch"][-1], metrics["seconds"])
    return finish_training(dist, resume, lambda: save_trunk(weights_path, model.trunk), metrics_path, metrics)


def run_from_arguments(arguments: dict[str, Any]) -> dict:
    """The rule's call as plain values (what the adapter passes, or each torchrun process reads from JSON)."""
    a = arguments
    settings = settings_from_config(a["section"], a["backbone"], a["classes"], a["stuff_classes"], a["class_names"],
                                    **runtime_arguments(a))
    return run(settings, a["captions"], a["weights"], a["metrics"], resume_path=a.get("resume"))


def settings_from_config(section: dict, backbone: dict, classes: list[str], stuff_classes: list[str],
                         class_names: dict[str, str], **runtime: Any) -> PretrainTrunkSettings:
    """``cam.pretrain_trunk`` (+ ``cam.backbone``, the dataset's words and ``clip.class_names``) -> settings."""
    words = tuple(dict.fromkeys([*classes, *stuff_classes]))
    return PretrainTrunkSettings(
        backbone=BackboneSpec(**backbone), words=words, names={w: n for w, n in class_names.items() if w in words},
        epochs=section["epochs"], batch_size=section["batch_size"], lr=section["lr"],
        weight_decay=section["weight_decay"], momentum=section["momentum"], warmup_steps=section["warmup_steps"],
        image_size=section["image_size"], scale=tuple(section["scale"]), holdout_fraction=section["holdout_fraction"],
        workers=section["workers"], **runtime)
