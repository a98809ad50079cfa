"""Isolated elements for the captions corpus: whole objects or one stuff patch on a plain black or grey background.

Like product photos on the web, they show one thing with nothing around it, so the words of a class or a stuff get tied
to its look alone rather than to its usual surroundings. Objects are always whole (inside the frame, never covered).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clims_core.data.demo_world.sprites import Sprite, box_size, render_sprite, rotated_extent, sample_angle, sample_aspect
from clims_core.data.demo_world.stuff import TextureBank, crop, stuff_patch

SINGLE_AREA = (0.10, 0.35)  # one object, as a fraction of the image (log-uniform)
GROUP_AREA = (0.04, 0.12)  # each of 2-3 same-class objects
GROUP_RATE = 0.2  # share of isolated object photos that show 2-3 instances
PLACEMENT_TRIES = 20


@dataclass(frozen=True)
class IsolatedResult:
    image: np.ndarray  # (S, S, 3) uint8
    count: int  # object instances drawn (0 for a stuff patch)


def _plain_background(size: int, rng: np.random.Generator, bank: TextureBank) -> np.ndarray:
    value = rng.uniform(0, 22) if rng.random() < 0.5 else rng.uniform(92, 150)
    return np.full((size, size, 3), value, dtype=np.float32) + crop(bank.noise, size, size, rng) * 1.5


def _finish(image: np.ndarray) -> np.ndarray:
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _fitting_sprite(name: str, area: float, limit: float, rng: np.random.Generator, bank: TextureBank) -> Sprite:
    aspect, angle, flip = sample_aspect(rng, name), sample_angle(rng, name), bool(rng.random() < 0.5)
    width, height = rotated_extent(*box_size(name, aspect, area), angle)
    area *= min(1.0, (limit / width) ** 2, (limit / height) ** 2)
    return render_sprite(name, rng, bank, area, aspect, angle, flip)


def render_isolated_object(name: str, size: int, rng: np.random.Generator, bank: TextureBank) -> IsolatedResult:
    """One whole object (or 2-3 of the same class, boxes apart) on a plain background."""
    image = _plain_background(size, rng, bank)
    wanted = 1 if rng.random() >= GROUP_RATE else int(rng.integers(2, 4))
    low, high = SINGLE_AREA if wanted == 1 else GROUP_AREA
    taken = np.zeros((size, size), dtype=bool)
    count = 0
    for _ in range(wanted):
        sprite = _fitting_sprite(name, np.exp(rng.uniform(np.log(low), np.log(high))) * size * size, 0.9 * size, rng, bank)
        h, w = sprite.label.shape
        for _ in range(PLACEMENT_TRIES):
            y0, x0 = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            if not taken[y0 : y0 + h, x0 : x0 + w].any():
                break
        else:
            continue  # no free spot: draw fewer instances (the caption counts what is drawn)
        window = np.s_[y0 : y0 + h, x0 : x0 + w]
        image[window] = image[window] * (1 - sprite.alpha[..., None]) + sprite.colour
        taken[max(0, y0 - 1) : y0 + h + 1, max(0, x0 - 1) : x0 + w + 1] = True  # boxes never touch
        count += 1
    return IsolatedResult(_finish(image), count)


def render_isolated_stuff(name: str, size: int, rng: np.random.Generator, bank: TextureBank) -> IsolatedResult:
    """A rectangle or a soft-edged blob of stuff ``name`` on a plain background."""
    image = _plain_background(size, rng, bank)
    h, w = (int(size * rng.uniform(0.45, 0.85)) for _ in range(2))
    y0, x0 = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    patch = stuff_patch(name, h, w, rng, bank)
    if rng.random() < 0.5:
        alpha = np.ones((h, w), dtype=np.float32)
    else:  # an ellipse-like blob with a wobbly rim
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        u, v = (x + 0.5) / w * 2 - 1, (y + 0.5) / h * 2 - 1
        theta = np.arctan2(v, u)
        rim = 1 + 0.12 * np.sin(3 * theta + rng.uniform(0, 2 * np.pi)) + 0.06 * np.sin(5 * theta + rng.uniform(0, 2 * np.pi))
        radius = np.sqrt(u**2 + v**2) * 1.18
        alpha = np.clip((rim - radius) * min(h, w) / 2 + 0.5, 0, 1).astype(np.float32)
    window = np.s_[y0 : y0 + h, x0 : x0 + w]
    image[window] = image[window] * (1 - alpha[..., None]) + patch * alpha[..., None]
    return IsolatedResult(_finish(image), 0)
