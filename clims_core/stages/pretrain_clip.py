"""Stage ``pretrain_clip``: train a small CLIP from scratch on a captions corpus.

On the demo world this stands in for internet-scale pretraining: the corpus (scenes with captions plus isolated objects
and stuff patches on plain backgrounds) never contains a train/val image. Random soft masking keeps the model reliable
on the masked images CLIMS feeds it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clims_core.data.captions import load_images, read_captions
from clims_core.models.clip import clip_from_config, save_clip_checkpoint
from clims_core.tags import canonical_json
from clims_core.training import distributed
from clims_core.training.contrastive import ContrastiveSettings, retrieval_at_1, train_contrastive
from clims_core.training.loop import ResumeState
from clims_core.training.runtime import finish_training
from clims_core.version import code_version

log = logging.getLogger(__name__)

DEMO_CLIP_CFG: dict[str, Any] = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 64, "patch_size": 8, "width": 192, "layers": 4, "head_width": 64, "mlp_ratio": 4.0},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 4},
}


@dataclass(frozen=True)
class PretrainClipSettings:
    training: ContrastiveSettings
    model_cfg: dict = field(default_factory=lambda: DEMO_CLIP_CFG)
    model_name: str = "demo-vit-tiny"
    holdout_fraction: float = 0.05
    device: str = "auto"
    threads: int = 1


def split_holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train / held-out index split."""
    order = np.random.default_rng(seed).permutation(n)
    held = max(1, int(round(n * fraction))) if fraction > 0 else 0
    return np.sort(order[held:]), np.sort(order[:held])


def run(settings: PretrainClipSettings, captions_dir: str | Path, checkpoint_path: str | Path,
        metrics_path: str | Path, config: dict | None = None, resume_path: str | Path | None = None) -> dict:
    """Train, write the checkpoint (atomic, with ``model_cfg``) and the metrics JSON; return the metrics.

    Under ``torchrun`` each process encodes its share of every global batch (DDP); ``resume_path`` is the step
    checkpoint in the work folder that a killed run continues from."""
    start = time.perf_counter()
    dist, device = distributed.start(settings.device, settings.threads)
    torch.manual_seed(settings.training.seed)
    pairs = read_captions(captions_dir)
    clip = clip_from_config(settings.model_cfg, settings.model_name, device)
    images = load_images([Path(captions_dir) / "images" / f"{i}.jpg" for i, _ in pairs], clip.image_size, settings.threads)
    texts = np.asarray([caption for _, caption in pairs], dtype=object)
    train, held = split_holdout(len(pairs), settings.holdout_fraction, settings.training.seed)
    log.info("pretraining %s on %d pairs (%d held out) at %d px on %s x %d", settings.model_name, len(train),
             len(held), clip.image_size, device, dist.world_size)
    before = retrieval_at_1(clip, images[held], list(texts[held])) if len(held) else None
    train_images = torch.from_numpy(images[train])
    identity = canonical_json([asdict(settings), str(captions_dir), code_version()])
    resume = ResumeState(resume_path, identity)
    history = train_contrastive(clip, lambda idx: train_images[idx], list(texts[train]), settings.training,
                                "pretrain_clip", dist, resume)
    after = retrieval_at_1(clip, images[held], list(texts[held])) if len(held) else None
    metrics = {
        "code_version": code_version(), "pairs": len(pairs), "held_out": len(held), "loss_per_epoch": history,
        "heldout_retrieval_at_1": {"before": before, "after": after}, "seconds": time.perf_counter() - start,
        "processes": dist.world_size,
    }
    if dist.is_main:
        log.info("held-out caption retrieval R@1 %.3f -> %.3f; loss %.3f -> %.3f (%.0f s)", before or 0, after or 0,
                 history[0], history[-1], metrics["seconds"])
    return finish_training(dist, resume, lambda: save_clip_checkpoint(
        checkpoint_path, clip.model, settings.model_cfg, config or {}, step=len(history),
        model_name=settings.model_name, metrics=metrics), metrics_path, metrics)


def run_from_arguments(arguments: dict[str, Any]) -> dict:
    """The rule's call as plain values (what the adapter passes, or each torchrun process reads from JSON)."""
    a = arguments
    settings = settings_from_config(a["section"], a["seed"], a["device"], a["threads"], a.get("checkpoint_every", 50))
    return run(settings, a["captions"], a["checkpoint"], a["metrics"], config=dict(a["section"]),
               resume_path=a.get("resume"))


def settings_from_config(section: dict, seed: int, device: str, threads: int,
                         checkpoint_every: int = 50) -> PretrainClipSettings:
    """``clip.pretrain`` of the config -> settings (a ViT-CLIP of the given size; the text tower as deep as the ViT)."""
    model_cfg = {
        "embed_dim": section["embed_dim"],
        "vision_cfg": {"image_size": section["image_size"], "patch_size": section["patch_size"], "width": section["width"],
                       "layers": section["layers"], "head_width": 64, "mlp_ratio": 4.0},
        "text_cfg": {"context_length": section["context_length"], "vocab_size": 49408, "width": section["text_width"],
                     "heads": max(1, section["text_width"] // 32), "layers": section["layers"]},
    }
    training = ContrastiveSettings(
        epochs=section["epochs"], batch_size=section["batch_size"], lr=section["lr"],
        weight_decay=section["weight_decay"], optimizer="adamw", warmup_steps=section["warmup_steps"],
        mask_probability=section["mask_probability"], seed=seed, checkpoint_every=checkpoint_every,
    )
    return PretrainClipSettings(training=training, model_cfg=model_cfg, model_name=section["model_name"],
                                holdout_fraction=section["holdout_fraction"], device=device, threads=threads)
