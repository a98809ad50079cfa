"""Model checkpoints: a plain dict of tensors and JSON-able values, loaded with ``weights_only=True``.

Nothing is ever unpickled from a file a user hands us, so a checkpoint can only hold tensors, numbers, strings, lists
and dicts. Layout: ``{"model": state_dict, "config": section, "code_version": str, "step": int, **extra}``.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from clims_core.io.atomic import atomic_path
from clims_core.version import code_version


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or not in the expected form."""


def save_checkpoint(
    path: str | os.PathLike,
    model_state: dict[str, torch.Tensor],
    config: dict[str, Any],
    step: int,
    **extra: Any,
) -> None:
    """Write a checkpoint atomically (``path.tmp-XXXX`` then ``os.replace``)."""
    payload = {"model": model_state, "config": config, "code_version": code_version(), "step": int(step), **extra}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, required: tuple[str, ...] = ("model", "config", "step")) -> dict[str, Any]:
    """Load a checkpoint safely; any problem raises :class:`CheckpointError` naming the file and the expected form."""
    path = Path(path)
    expected = "a torch.save file of {'model': state_dict, 'config': dict, 'code_version': str, 'step': int}"
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found (expected {expected})")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(f"{path}: cannot be read safely ({error.__class__.__name__}: {error}); expected {expected}") from None
    if not isinstance(payload, dict) or any(key not in payload for key in required):
        raise CheckpointError(f"{path}: missing keys {[k for k in required if not isinstance(payload, dict) or k not in payload]}; expected {expected}")
    return payload
