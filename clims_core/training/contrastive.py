"""The contrastive image-text training loop shared by ``pretrain_clip`` and ``finetune_clip``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from clims_core.device import autocast
from clims_core.losses.contrastive import contrastive_loss
from clims_core.models.clip import LoadedClip
from clims_core.training.augment import mask_some, random_flip
from clims_core.training.schedules import warmup_cosine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContrastiveSettings:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    optimizer: str = "adamw"  # "adamw" (pretraining from scratch) or "sgd" (the paper's fine-tuning)
    momentum: float = 0.9
    warmup_steps: int = 0
    mask_probability: float = 0.0  # share of images multiplied by random soft masks
    masked_area: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer: expected adamw or sgd, got {self.optimizer!r}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2 (contrastive needs negatives)")


def make_optimizer(params: list[torch.nn.Parameter], settings: ContrastiveSettings) -> torch.optim.Optimizer:
    """AdamW, or SGD with momentum *and* weight decay in their own arguments (the later CLIMS code passed weight decay
    as SGD's momentum by position; we do not copy that slip)."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.98), eps=1e-6)
    return torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum)


def train_contrastive(
    clip: LoadedClip,
    load_batch: Callable[[np.ndarray], torch.Tensor],
    texts: Sequence[str],
    settings: ContrastiveSettings,
    desc: str,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``clip.model`` in place on pairs (``load_batch(indices)`` -> uint8 N x 3 x H x W, ``texts[i]``).

    Identical texts in a batch are treated as matches, not negatives. Returns the mean loss of every epoch.
    """
    device = clip.device
    model = clip.model.train()
    tokens = clip.tokenizer(list(texts))
    _, text_ids = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    text_ids = torch.as_tensor(text_ids)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, settings)
    generator = torch.Generator().manual_seed(settings.seed)
    steps_per_epoch = max(1, len(texts) // settings.batch_size)
    total = settings.epochs * steps_per_epoch
    history: list[float] = []
    step = 0
    for epoch in range(settings.epochs):
        order = torch.randperm(len(texts), generator=generator).numpy()
        losses: list[float] = []
        bar = tqdm(range(steps_per_epoch), desc=f"{desc} epoch {epoch + 1}/{settings.epochs}", unit="batch", mininterval=2.0)
        for index in bar:
            batch = order[index * settings.batch_size:(index + 1) * settings.batch_size]
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * warmup_cosine(step, total, settings.warmup_steps)
            images = random_flip(load_batch(batch).float().div_(255), generator)
            images = mask_some(images, settings.mask_probability, generator, settings.masked_area)
            with autocast(device):
                image_features = clip.encode_image(images.to(device))
                text_features = torch.nn.functional.normalize(model.encode_text(tokens[batch].to(device)), dim=-1)
                scale = model.logit_scale.exp().clamp(max=100)
                loss = contrastive_loss(image_features.float(), text_features.float(), scale, text_ids[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, np.log(100))
            losses.append(loss.item())
            step += 1
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
        history.append(float(np.mean(losses)))
        log.info("%s epoch %d/%d: loss %.4f", desc, epoch + 1, settings.epochs, history[-1])
        if on_epoch:
            on_epoch(epoch, history[-1])
    model.eval()
    return history


@torch.no_grad()
def encode_images(clip: LoadedClip, images_u8: torch.Tensor | np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """Unit image embeddings of a uint8 N x 3 x H x W array, in batches."""
    images_u8 = torch.as_tensor(images_u8)
    chunks = [clip.encode_image(images_u8[i:i + batch_size].float().div(255)) for i in range(0, len(images_u8), batch_size)]
    return torch.cat(chunks).float().cpu()


@torch.no_grad()
def retrieval_at_1(clip: LoadedClip, images_u8: np.ndarray, texts: Sequence[str]) -> float:
    """Image -> text retrieval accuracy among the distinct texts: is the top text the image's own caption?"""
    unique, truth = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    text_features = torch.cat([clip.encode_text(list(unique[i:i + 256])) for i in range(0, len(unique), 256)]).float().cpu()
    scores = encode_images(clip, images_u8) @ text_features.t()
    return float((scores.argmax(dim=1).numpy() == truth).mean())
