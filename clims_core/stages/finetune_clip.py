"""Stage ``finetune_clip``: contrastive fine-tuning of CLIP on the training split's images paired with label text.

The seed paper (supplementary A.3) fine-tunes CLIP on text made from VOC labels ("a photo of cat and dog.") because
stock CLIP recognises some VOC classes (e.g. person) poorly from the class words alone. Paper settings: SGD momentum 0.9,
lr 5e-5 with cosine decay, weight decay 1e-3, 20 epochs, batch 16, 224 px.

``weight_interpolation`` below 1 saves WiSE-FT's blend of the fine-tuned and the starting weights instead of the
fine-tuned ones (not in the paper; 1, the default, is the paper's fine-tuning).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clims_core.data.captions import load_images
from clims_core.data.manifest import Manifest
from clims_core.models.clip import load_clip, save_clip_checkpoint
from clims_core.models.prompts import display_name, label_text
from clims_core.tags import canonical_json
from clims_core.training import distributed
from clims_core.training.contrastive import ContrastiveSettings, train_contrastive
from clims_core.training.loop import ResumeState
from clims_core.training.runtime import finish_training
from clims_core.training.weight_interpolation import interpolate_, snapshot
from clims_core.version import code_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneClipSettings:
    training: ContrastiveSettings
    template: str = "a photo of {names}."
    class_names: dict[str, str] = field(default_factory=dict)
    split: str = "train_aug"
    device: str = "auto"
    threads: int = 1
    weight_interpolation: float = 1.0  # WiSE-FT alpha: saved = (1 - alpha) * starting CLIP + alpha * fine-tuned

    def __post_init__(self) -> None:
        if not 0 <= self.weight_interpolation <= 1:
            raise ValueError("clip.finetune_settings.weight_interpolation: expected a number in [0, 1], got "
                             f"{self.weight_interpolation}")


def label_texts(manifest: Manifest, split: str, template: str, class_names: dict[str, str]) -> list[str]:
    """One text per image of the split, naming its labelled classes in class order."""
    names = [display_name(c, class_names) for c in manifest.classes]
    return [label_text([names[i] for i in np.flatnonzero(row)], template) for row in manifest.labels(split)]


def run(settings: FinetuneClipSettings, manifest_path: str | Path, clip_model: str | None, clip_weights: str | None,
        checkpoint_path: str | Path, metrics_path: str | Path, config: dict | None = None,
        resume_path: str | Path | None = None) -> dict:
    """Fine-tune; write the checkpoint and the metrics JSON. DDP under ``torchrun``; ``resume_path`` as in
    :func:`clims_core.stages.pretrain_clip.run`."""
    start = time.perf_counter()
    dist, device = distributed.start(settings.device, settings.threads)
    torch.manual_seed(settings.training.seed)
    manifest = Manifest.load(manifest_path)
    clip = load_clip(clip_model, clip_weights, device)
    texts = label_texts(manifest, settings.split, settings.template, settings.class_names)
    paths = [manifest.image_path(i) for i in manifest.ids(settings.split)]

    def load_batch(indices: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(load_images([paths[i] for i in indices], clip.image_size, settings.threads))

    log.info("fine-tuning %s on %d %s images with label text, e.g. %r", clip.source, len(texts), settings.split, texts[0])
    identity = canonical_json([asdict(settings), clip_model, str(clip_weights), code_version()])
    resume = ResumeState(resume_path, identity)
    start_weights = snapshot(clip.model) if settings.weight_interpolation < 1 else {}
    history = train_contrastive(clip, load_batch, texts, settings.training, "finetune_clip", dist, resume)
    metrics = {"code_version": code_version(), "images": len(texts), "loss_per_epoch": history,
               "distinct_texts": len(set(texts)), "seconds": time.perf_counter() - start,
               "processes": dist.world_size, "weight_interpolation": settings.weight_interpolation}
    interpolate_(clip.model, start_weights, settings.weight_interpolation)
    if dist.is_main:
        log.info("fine-tuned in %.0f s; loss %.3f -> %.3f", metrics["seconds"], history[0], history[-1])
    return finish_training(dist, resume, lambda: save_clip_checkpoint(
        checkpoint_path, clip.model, clip.model_cfg or {}, config or {}, step=len(history), model_name=clip.model_name,
        metrics=metrics), metrics_path, metrics)


def run_from_arguments(arguments: dict[str, Any]) -> dict:
    """The rule's call as plain values (what the adapter passes, or each torchrun process reads from JSON)."""
    a = arguments
    settings = settings_from_config(a["section"], a["class_names"], a["seed"], a["device"], a["threads"],
                                    a.get("checkpoint_every", 50))
    model, weights = a["clip"]
    return run(settings, a["manifest"], model, weights, a["checkpoint"], a["metrics"], config=dict(a["section"]),
               resume_path=a.get("resume"))


def settings_from_config(section: dict, class_names: dict[str, str], seed: int, device: str, threads: int,
                         checkpoint_every: int = 50) -> FinetuneClipSettings:
    """``clip.finetune_settings`` of the config -> settings (SGD with momentum, cosine decay, as in the paper)."""
    training = ContrastiveSettings(
        epochs=section["epochs"], batch_size=section["batch_size"], lr=section["lr"],
        weight_decay=section["weight_decay"], optimizer="sgd", momentum=section["momentum"], seed=seed,
        checkpoint_every=checkpoint_every, mask_probability=section["mask_probability"],
    )
    return FinetuneClipSettings(training=training, template=section["template"], class_names=dict(class_names),
                                device=device, threads=threads, weight_interpolation=section["weight_interpolation"])
