"""The words a caption names, and the caption images as a training set (``pretrain_trunk``'s data).

A caption names a vocabulary word in its own form (``diningtable`` is written "dining table"), singular or plural;
:func:`caption_targets` turns captions into multi-label targets. :class:`CaptionWordsDataset` serves the decoded
corpus images with ImageNet's augmentation in miniature (random resized crop, flip), drawn from
``(seed, epoch, index)``.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from clims_core.data.epoch_seeded import EpochSeededDataset

# Plurals that adding -s / -es does not give (the demo's captions say "two people").
IRREGULAR_PLURALS = {"person": ("people", "persons"), "man": ("men",), "woman": ("women",), "child": ("children",),
                     "mouse": ("mice",), "foot": ("feet",), "tooth": ("teeth",), "goose": ("geese",)}


def word_forms(name: str) -> list[str]:
    """Singular and plural spellings of a (possibly multi-word) name, lower case: the last word is inflected."""
    name = " ".join(re.split(r"[\s_-]+", name.strip().lower()))
    head, _, last = name.rpartition(" ")
    plurals = {last + "s", last + "es", *IRREGULAR_PLURALS.get(last, ())}
    if len(last) > 1 and last.endswith("y") and last[-2] not in "aeiou":
        plurals.add(last[:-1] + "ies")
    return [name] + sorted(f"{head} {p}" if head else p for p in plurals)


def word_pattern(word: str, names: dict[str, str] | None = None) -> re.Pattern[str]:
    """A regex that finds ``word`` (its id, its display name, singular or plural) as whole words in lower-case text;
    spaces, hyphens and underscores between the words of a multi-word name are interchangeable."""
    spellings = {word, (names or {}).get(word, word)}
    forms = sorted({form for spelling in spellings for form in word_forms(spelling)}, key=len, reverse=True)
    alternatives = "|".join(r"[\s_-]+".join(map(re.escape, form.split(" "))) for form in forms)
    return re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])")


def caption_targets(captions: list[str], words: tuple[str, ...] | list[str],
                    names: dict[str, str] | None = None) -> np.ndarray:
    """Multi-hot ``N x len(words)`` float32: 1 where the caption names the word."""
    patterns = [word_pattern(word, names) for word in words]
    targets = np.zeros((len(captions), len(words)), dtype=np.float32)
    for i, caption in enumerate(captions):
        text = caption.lower()
        for j, pattern in enumerate(patterns):
            targets[i, j] = pattern.search(text) is not None
    return targets


def split_holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, held-out) index split; at least one held out when ``fraction`` > 0."""
    order = np.random.default_rng([seed, 17]).permutation(n)
    held = max(1, int(round(n * fraction))) if fraction > 0 else 0
    return np.sort(order[held:]), np.sort(order[:held])


def random_resized_box(height: int, width: int, scale: tuple[float, float], rng: np.random.Generator,
                       ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop with area share in ``scale`` and aspect in ``ratio`` (torchvision's
    RandomResizedCrop sampling: 10 tries, then the whole image)."""
    area = height * width
    log_ratio = np.log(ratio)
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = float(np.exp(rng.uniform(*log_ratio)))
        w, h = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return 0, 0, height, width


class CaptionWordsDataset(EpochSeededDataset):
    """(image 3 x size x size in [0, 1], word targets, index) of the caption images: random resized crop + flip.

    ``images`` are the decoded corpus images (``N x 3 x size x size`` uint8); the augmentation of an item is drawn from
    ``(seed, epoch, index)`` alone, so batches are the same whatever the worker count, and in a resumed run."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, scale: tuple[float, float], seed: int = 0,
                 augment: bool = True):
        self.images, self.targets, self.scale, self.seed, self.augment = images, targets, scale, seed, augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image = self.images[index].float().div_(255)
        if self.augment:
            rng = self.rng(index, 11)
            size = image.shape[-2:]
            top, left, h, w = random_resized_box(size[0], size[1], self.scale, rng)
            if (h, w) != tuple(size):
                image = F.interpolate(image[None, :, top:top + h, left:left + w], size=tuple(size), mode="bilinear",
                                      align_corners=False, antialias=True)[0].clamp_(0, 1)
            if rng.random() < 0.5:
                image = image.flip(-1)
        return image.contiguous(), self.targets[index], index
