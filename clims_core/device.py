"""Device choice (``device: auto``): CUDA with bf16 autocast and channels_last when present, else CPU threads."""

from __future__ import annotations

import contextlib

import torch


def pick_device(setting: str = "auto", threads: int | None = None) -> torch.device:
    """Resolve the config's ``device``; on CPU, use the rule's threads for intra-op parallelism."""
    if setting not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected auto, cpu or cuda, got {setting!r}")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda was asked for but no CUDA device is visible (use auto or cpu)")
    device = torch.device("cuda" if setting != "cpu" and torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and threads:
        torch.set_num_threads(max(1, int(threads)))
    return device


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; nothing on CPU (fp32 stays exact and reproducible there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(device: torch.device) -> torch.memory_format:
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format
