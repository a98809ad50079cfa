"""The contrastive loop on the shared training loop: a run killed between steps resumes to the uninterrupted run's
weights (the augmentation generator's state travels in the step checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clims_core.models.clip import clip_from_config
from clims_core.training.contrastive import ContrastiveSettings, train_contrastive
from clims_core.training.loop import ResumeState
from tests.conftest import TINY_CLIP_CFG

WORDS = ["a boat", "a car", "a train", "a bird", "the sky", "water"]


def _train(resume: ResumeState, fail_at_batch: int | None = None) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    clip = clip_from_config(TINY_CLIP_CFG, "tiny", torch.device("cpu"))
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (40, 3, 32, 32), dtype=np.uint8))
    loads = []

    def load_batch(indices: np.ndarray) -> torch.Tensor:
        if len(loads) == fail_at_batch:
            raise RuntimeError("killed")
        loads.append(indices)
        return images[indices]

    settings = ContrastiveSettings(epochs=3, batch_size=8, lr=1e-3, weight_decay=0.1, warmup_steps=2,
                                   mask_probability=0.5, seed=0, checkpoint_every=3)
    train_contrastive(clip, load_batch, [WORDS[i % 6] for i in range(40)], settings, "test", resume=resume)
    return clip.model.state_dict()


def test_killed_contrastive_training_resumes_to_the_uninterrupted_weights(tmp_path):
    reference = _train(ResumeState(None, ""))
    resume = ResumeState(tmp_path / "resume.pt", "same settings")
    with pytest.raises(RuntimeError, match="killed"):
        _train(resume, fail_at_batch=7)  # mid epoch 2 (5 steps an epoch), after the step-6 checkpoint
    resumed = _train(resume)
    for name, value in reference.items():
        assert torch.equal(value, resumed[name]), name
