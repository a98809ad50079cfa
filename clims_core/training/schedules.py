"""Learning-rate schedules as plain functions of the step (easy to test, easy to resume)."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup: int = 0, floor: float = 0.0) -> float:
    """Multiplier in [floor, 1]: linear warm-up over ``warmup`` steps, then cosine decay to ``floor`` at ``total``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def poly(step: int, total: int, power: float = 0.9) -> float:
    """IRNet/DeepLab's poly decay ``(1 - step/total)^power``."""
    return (1 - min(step, total) / total) ** power
