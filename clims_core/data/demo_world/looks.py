"""Colour ranges of the sprite families: where the world's partial-activation property is designed.

Each class has a small distinctive part in a colour no other class and no stuff uses, and a larger body whose look
(colour range + inner texture) it shares exactly with one partner class. A classifier can name the class from the part
alone, so a plain CAM learns the part and leaves the body out; covering the whole object needs more than the label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

Range = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # (R, G, B) inclusive ranges

# Distinctive parts: hues spread over the wheel, away from every stuff and body colour.
PART_COLOURS: dict[str, Range] = {
    "train": ((190, 222), (22, 48), (22, 48)),  # red engine cab
    "car": ((10, 40), (208, 236), (186, 214)),  # turquoise cabin
    "boat": ((236, 255), (108, 134), (8, 36)),  # orange sail and flag
    "aeroplane": ((196, 228), (28, 58), (192, 226)),  # magenta tail fin
    "bird": ((234, 255), (212, 236), (18, 52)),  # yellow head and beak
    "person": ((236, 252), (156, 178), (134, 156)),  # skin-pink head and hands
}

# Shared bodies: the partner pairs are (train, car), (boat, aeroplane), (bird, person).
BODY_LOOK_OF: dict[str, str] = {
    "train": "grey_windows",
    "car": "grey_windows",
    "boat": "white_stripe",
    "aeroplane": "white_stripe",
    "bird": "brown_feather",
    "person": "brown_feather",
}


@dataclass(frozen=True)
class BodyLookRanges:
    """Colour ranges of one shared body look: base, accent (windows / stripe / feather edges) and wheels."""

    base: Range
    accent: Range
    wheel: Range


BODY_LOOKS: dict[str, BodyLookRanges] = {
    # blue-grey metal with a row of dark windows, dark wheels
    "grey_windows": BodyLookRanges(((112, 146), (124, 156), (140, 172)), ((34, 54), (44, 64), (70, 92)), ((26, 40), (26, 40), (28, 42))),
    # near-white hull or fuselage with one navy stripe
    "white_stripe": BodyLookRanges(((226, 248), (226, 248), (222, 246)), ((24, 48), (38, 66), (108, 146)), ((226, 248), (226, 248), (222, 246))),
    # warm brown with darker feather scallops (bird plumage, person's coat)
    "brown_feather": BodyLookRanges(((128, 162), (80, 104), (44, 64)), ((88, 110), (52, 68), (28, 42)), ((128, 162), (80, 104), (44, 64))),
}


@dataclass(frozen=True)
class BodyLook:
    """One instance's sampled body colours (RGB, 0..255)."""

    name: str
    base: tuple[int, int, int]
    accent: tuple[int, int, int]
    wheel: tuple[int, int, int]


def sample_colour(rng: np.random.Generator, ranges: Range) -> tuple[int, int, int]:
    """A colour drawn uniformly inside per-channel ranges."""
    return tuple(int(rng.integers(low, high + 1)) for low, high in ranges)  # type: ignore[return-value]


def sample_part_colour(rng: np.random.Generator, name: str) -> tuple[int, int, int]:
    return sample_colour(rng, PART_COLOURS[name])


def sample_body_look(rng: np.random.Generator, name: str, look_of: Mapping[str, str] = BODY_LOOK_OF) -> BodyLook:
    """The body colours of an instance of class ``name`` (the same ranges for both classes of a partner pair)."""
    look = look_of[name]
    ranges = BODY_LOOKS[look]
    return BodyLook(look, sample_colour(rng, ranges.base), sample_colour(rng, ranges.accent), sample_colour(rng, ranges.wheel))


def partner(name: str, look_of: Mapping[str, str] = BODY_LOOK_OF) -> str:
    """The other class with the same body look."""
    return next(other for other, look in look_of.items() if look == look_of[name] and other != name)


def body_looks_for(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The body look of every family when ``pairs`` (sorted, see ``DemoWorldSettings.partners``) share looks.

    Pairs take looks in order: the default look of the pair's first member if still free, else of its second, else the
    first free one, so the demo world's pairs keep their looks and any pairing gets three distinct ones.
    """
    free = list(BODY_LOOKS)
    look_of: dict[str, str] = {}
    for pair in pairs:
        look = next((BODY_LOOK_OF[m] for m in pair if BODY_LOOK_OF[m] in free), free[0])
        free.remove(look)
        look_of.update({m: look for m in pair})
    return look_of
