"""Datasets whose random augmentation is drawn from ``(seed, epoch, index)`` alone.

So a batch is the same whatever the number of loader workers or training processes, and a resumed run draws what an
uninterrupted one would: :class:`~clims_core.training.loop.EpochPlan` calls ``set_epoch`` before each epoch.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset


class EpochSeededDataset(Dataset):
    """Base of the training datasets: ``self.seed`` set by the subclass, ``self.epoch`` by the training loop."""

    seed: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, index: int, *stream: int) -> np.random.Generator:
        """The generator of item ``index`` this epoch (``stream`` keeps independent draws of one item apart)."""
        return np.random.default_rng([self.seed, self.epoch, index, *stream])
