"""Stage ``make_pseudo_masks``: IRNet's random walk from the CAMs to pseudo masks (IRNet ``make_sem_seg_labels``).

Per image: the trained IRN's boundary map (the image and its mirror), the stride-4 CAMs of the CAM store times
``1 - boundary``, ``2**exp_times`` random-walk steps over the transition matrix of the boundaries within ``radius``
(affinities to the power ``beta``), upsampled x4, divided by their maximum, a background plane at ``bg_thres``,
argmax (:mod:`clims_core.refine.random_walk`). ``background: walk`` instead walks a background plane
``(1 - max cam)^alpha`` with the classes and takes the argmax (AffinityNet, Ahn & Kwak 2018): CAM that spills over a
large background region is then outweighed there instead of surviving a threshold after the global normalisation.
Masks go to a mask folder (``masks/<id>.png`` + ``index.json``), shardable like ``make_cams``; on the CPU a pool of
processes shares the images.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clims_core.checks import require_one_of, require_open_unit
from clims_core.device import pick_device
from clims_core.io.checkpoint import load_checkpoint
from clims_core.io.digest import sha256_file
from clims_core.models.irn import boundary_map, load_irn_model
from clims_core.refine.per_image import ShardSettings, masks_from_cams
from clims_core.refine.random_walk import background_plane, propagate, walk_to_mask

log = logging.getLogger(__name__)
BACKGROUNDS = ("threshold", "walk")


@dataclass(frozen=True)
class PseudoMaskSettings(ShardSettings):
    beta: float = 10.0
    exp_times: int = 8
    radius: int = 5
    bg_thres: float = 0.25  # IRNet sem_seg_bg_thres (0.2 in the later CLIMS code)
    background: str = "threshold"  # IRNet: a constant plane after the walk; "walk": AffinityNet's walked plane
    alpha: float = 1.0  # background = (1 - max cam)^alpha when background == "walk"
    device: str = "auto"
    precision: str = "auto"  # see clims_core.device.autocast
    threads: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        require_open_unit("refine.random_walk.bg_thres", self.bg_thres)
        require_one_of("refine.random_walk.background", self.background, BACKGROUNDS)
        if self.exp_times < 0 or self.radius < 2 or self.beta <= 0 or self.alpha <= 0:
            raise ValueError(f"refine.random_walk: expected exp_times >= 0, radius >= 2, beta > 0, alpha > 0; got "
                             f"exp_times {self.exp_times}, radius {self.radius}, beta {self.beta}, alpha {self.alpha}")


def pseudo_mask(model: torch.nn.Module, image: np.ndarray, cams: np.ndarray, keys: np.ndarray,
                settings: PseudoMaskSettings, min_size: int, device: torch.device) -> np.ndarray:
    """One image's pseudo mask from its RGB array and stride-4 CAMs."""
    boundary = boundary_map(model, torch.from_numpy(image.transpose(2, 0, 1)), min_size, device, settings.precision)
    if cams.shape[1:] != tuple(boundary.shape):
        raise ValueError(f"stride-4 CAMs of {cams.shape[1]} x {cams.shape[2]} but a boundary map of "
                         f"{boundary.shape[0]} x {boundary.shape[1]} for an image of "
                         f"{image.shape[0]} x {image.shape[1]}")
    scores = torch.from_numpy(cams).to(device)
    if settings.background == "walk":
        scores = torch.cat([background_plane(scores, settings.alpha), scores])
    walked = propagate(scores, boundary, settings.beta, settings.exp_times, settings.radius)
    bg_thres = settings.bg_thres if settings.background == "threshold" else None
    return walk_to_mask(walked, keys, image.shape[:2], bg_thres)


_MODELS: dict[tuple[str, str], tuple[torch.nn.Module, int]] = {}  # a process's loaded IRN, by checkpoint and device


@dataclass(frozen=True)
class _RandomWalk:
    """(image, stride-4 CAMs, keys) -> pseudo mask; picklable, each worker process loading the IRN once."""

    settings: PseudoMaskSettings
    checkpoint: Path
    device: str
    threads: int

    def model(self) -> tuple[torch.nn.Module, int]:
        key = (str(self.checkpoint), self.device)
        if key not in _MODELS:
            torch.set_num_threads(self.threads)
            model, payload = load_irn_model(self.checkpoint)
            _MODELS[key] = model.to(self.device), int(payload["architecture"]["crop"])  # pad like the training crops
        return _MODELS[key]

    @torch.no_grad()
    def __call__(self, image: np.ndarray, cams: np.ndarray, keys: np.ndarray) -> np.ndarray:
        model, min_size = self.model()
        return pseudo_mask(model, image, cams, keys, self.settings, min_size, torch.device(self.device))


def run(settings: PseudoMaskSettings, manifest_path: str | Path, store_path: str | Path,
        irn_checkpoint: str | Path, folder: str | Path, index_path: str | Path,
        method: str | None = None) -> dict[str, Any]:
    """Pseudo masks of the split's images (this shard's) into ``folder``; the index (or the shard's part) last.

    On the CPU the images go to ``threads`` worker processes of one torch thread each (per-image work of this size
    scales better over processes than over threads); on CUDA one process does all.
    """
    device = pick_device(settings.device, settings.threads)
    # a bad checkpoint fails here, before any worker starts (no network is built in this process: workers are forked)
    load_checkpoint(irn_checkpoint, required=("model", "config", "step", "architecture"))
    processes = max(1, settings.threads) if device.type == "cpu" else 1
    walk = _RandomWalk(settings, Path(irn_checkpoint), str(device), 1 if processes > 1 else settings.threads)
    done = masks_from_cams(walk, "make_pseudo_masks", settings, manifest_path, store_path, folder, index_path,
                           processes, high_res=False, kind="pseudo_masks", refiner="irn", method=method,
                           irn_checkpoint_sha256=sha256_file(irn_checkpoint))
    log.info("%d pseudo masks in %.1f s (%.1f img/s, %d process(es))", done.images, done.seconds, done.rate,
             processes)
    return done.summary()
