"""The contrastive image-text training shared by ``pretrain_clip`` and ``finetune_clip``, on the shared loop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from clims_core.losses.contrastive import contrastive_loss
from clims_core.models.clip import LoadedClip
from clims_core.training.augment import mask_some, random_flip
from clims_core.training.distributed import Distributed
from clims_core.training.loop import LoopSettings, LossStep, ResumeState, train_loop
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
    checkpoint_every: int = 50  # steps between resume checkpoints (0: only on SIGTERM)

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


class ContrastiveBatches:
    """The global batches of the contrastive loop: a permutation per epoch and the augmentation (flip, soft masks)
    drawn from one generator in the main process, then each process's share of the batch.

    The generator is what makes a batch, so it is the source's resume state (with the epoch's order): a resumed run
    continues the same draws. Every process draws the same global batch and keeps rows ``rank::world_size``;
    ``text_ids`` come for the whole batch in the order the processes' features are gathered in."""

    def __init__(self, load_batch: Callable[[np.ndarray], torch.Tensor], tokens: torch.Tensor, text_ids: torch.Tensor,
                 settings: ContrastiveSettings):
        self.load_batch, self.tokens, self.text_ids, self.settings = load_batch, tokens, text_ids, settings
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.steps_per_epoch = max(1, len(tokens) // settings.batch_size)
        self._order: torch.Tensor | None = None
        self._order_epoch = -1

    def state(self) -> dict[str, Any]:
        return {"order": self._order, "order_epoch": self._order_epoch, "generator": self.generator.get_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self._order, self._order_epoch = state["order"], state["order_epoch"]
        self.generator.set_state(state["generator"])

    def epoch(self, epoch: int, first: int, dist: Distributed) -> Iterator[tuple]:
        if self._order_epoch != epoch:  # a resumed run keeps the order it was in
            self._order, self._order_epoch = torch.randperm(len(self.tokens), generator=self.generator), epoch
        size, settings = self.settings.batch_size, self.settings
        for index in range(first, self.steps_per_epoch):
            batch = self._order[index * size:(index + 1) * size].numpy()
            images = random_flip(self.load_batch(batch).float().div_(255), self.generator)
            images = mask_some(images, settings.mask_probability, self.generator, settings.masked_area)
            mine = dist.share(list(range(len(batch))))
            yield images[mine], (self.tokens[batch][mine], self.text_ids[batch][dist.gather_order(len(batch))])


class ContrastiveObjective(nn.Module):
    """CLIP's symmetric contrastive loss over the global batch: with several processes the features are gathered
    with autograd (each process's loss is the global loss; DDP's average then gives one process's gradient)."""

    def __init__(self, clip: LoadedClip, dist: Distributed):
        super().__init__()
        self.model, self.dist = clip.model, dist
        self.encode_image = clip.encode_image  # a bound method, not a second registration of the model

    def forward(self, images: torch.Tensor, labels: tuple[torch.Tensor, torch.Tensor], step: int,
                total: int) -> tuple[torch.Tensor, dict[str, float]]:
        tokens, text_ids = labels
        with torch.no_grad():  # CLIP's bound on the temperature, applied to the value this step uses
            self.model.logit_scale.clamp_(0, np.log(100))
        image_features = self.dist.gather(self.encode_image(images))
        text_features = self.dist.gather(torch.nn.functional.normalize(self.model.encode_text(tokens), dim=-1))
        scale = self.model.logit_scale.exp().clamp(max=100)
        return contrastive_loss(image_features.float(), text_features.float(), scale, text_ids), {}


def train_contrastive(
    clip: LoadedClip,
    load_batch: Callable[[np.ndarray], torch.Tensor],
    texts: Sequence[str],
    settings: ContrastiveSettings,
    desc: str,
    dist: Distributed | None = None,
    resume: ResumeState | None = None,
) -> list[float]:
    """Train ``clip.model`` in place on pairs (``load_batch(indices)`` -> uint8 N x 3 x H x W, ``texts[i]``).

    Identical texts in a batch are treated as matches, not negatives. Returns the mean loss of every epoch.
    Under ``torchrun`` (``dist``) each process encodes its share of every global batch; ``resume`` holds the step
    checkpoint a killed run continues from.
    """
    dist = dist or Distributed()
    model = clip.model.train()
    _, text_ids = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    source = ContrastiveBatches(load_batch, clip.tokenizer(list(texts)), torch.as_tensor(text_ids), settings)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], settings)
    for group in optimizer.param_groups:
        group["initial_lr"] = settings.lr
    objective = ContrastiveObjective(clip, dist)
    history, _ = train_loop(LossStep(objective, clip.device, dist), model, optimizer, source,
                            LoopSettings(settings.epochs, settings.checkpoint_every), clip.device, dist,
                            resume or ResumeState(None, ""), desc,
                            lambda step, total: warmup_cosine(step, total, settings.warmup_steps))
    with torch.no_grad():
        model.logit_scale.clamp_(0, np.log(100))
    model.eval()
    return [epoch["loss"] for epoch in history]


@torch.no_grad()
def encode_images(clip: LoadedClip, images_u8: torch.Tensor | np.ndarray, batch_size: int = 256,
                  desc: str | None = None) -> torch.Tensor:
    """Unit image embeddings of a uint8 N x 3 x H x W array, in batches (a progress bar when ``desc`` is given)."""
    images_u8 = torch.as_tensor(images_u8)
    starts = tqdm(range(0, len(images_u8), batch_size), desc=desc, unit="batch", mininterval=2.0, disable=desc is None)
    chunks = [clip.encode_image(images_u8[i:i + batch_size].float().div(255)) for i in starts]
    return torch.cat(chunks).float().cpu()


@torch.no_grad()
def retrieval_at_1(clip: LoadedClip, images_u8: np.ndarray, texts: Sequence[str]) -> float:
    """Image -> text retrieval accuracy among the distinct texts: is the top text the image's own caption?"""
    unique, truth = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    text_features = torch.cat([clip.encode_text(list(unique[i:i + 256])) for i in range(0, len(unique), 256)]).float().cpu()
    scores = encode_images(clip, images_u8) @ text_features.t()
    return float((scores.argmax(dim=1).numpy() == truth).mean())
