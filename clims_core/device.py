"""Device and precision choice: ``device: auto`` takes CUDA when present (channels_last there), else CPU threads;
``precision: auto`` means bf16 autocast on CUDA and float32 on CPU, ``fp32`` keeps CUDA in float32 too (the README's
seed studies ran so, to match the CPU demo's arithmetic)."""

from __future__ import annotations

import contextlib

import torch

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "bf16", "fp32")


def pick_device(setting: str = "auto", threads: int | None = None) -> torch.device:
    """Resolve the config's ``device``; on CPU, use the rule's threads for intra-op parallelism."""
    if setting not in DEVICES:
        raise ValueError(f"device: expected auto, cpu or cuda, got {setting!r}")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda was asked for but no CUDA device is visible (use auto or cpu)")
    device = torch.device("cuda" if setting != "cpu" and torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and threads:
        torch.set_num_threads(max(1, int(threads)))
    return device


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device``: bf16 on CUDA unless fp32 is asked for; none on CPU (float32
    stays exact and reproducible there, and CPU bf16 is slow without AMX)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected auto, bf16 or fp32, got {precision!r}")
    return torch.bfloat16 if device.type == "cuda" and precision != "fp32" else None


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (see :func:`autocast_dtype`)."""
    dtype = autocast_dtype(device, precision)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def memory_format(device: torch.device) -> torch.memory_format:
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format
