"""What each image of a split contains: its object classes and which stuff is present, with calibrated confounders.

The classes of an image come from the image's own random stream. The stuff is assigned per split by quota rather than by
independent coin flips, so the measured rates land on the settings instead of near them:
- among the images holding any class whose home is stuff ``s``, exactly ``round(home_stuff_rate * n)`` get ``s``
  (counted per combination of those classes, with the rounding remainder carried, so each class sees about that rate);
- ``s`` is then added to ``round(r / (1 - r) * n_home)`` images holding none of its classes (``r`` =
  ``stuff_without_class_rate``), so that P(no class of s | s present) = r. A stuff that is home to no configured class
  goes to ``ORPHAN_STUFF_RATE`` of the images.
Everything is a function of (seed, split), so the plan does not depend on how many workers render it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clims_core.data.demo_world.settings import DemoWorldSettings

PLAN_STREAM = 0  # child 0 of an image's SeedSequence draws its plan; child 1 renders it
# Split-level streams, one per purpose, so adding a draw to one cannot shift another.
STUFF_QUOTAS, LABELED_SUBSET, CAPTION_KINDS = 1_000_003, 1_000_004, 1_000_005
ORPHAN_STUFF_RATE = 0.2
OBJECT_COUNT_DECAY = 0.7  # P(k objects) proportional to decay ** (k - 1)
TWO_CLASS_RATE = 0.5  # P(two classes | at least two objects)


@dataclass(frozen=True)
class ImagePlan:
    """The content of one image, decided before it is drawn."""

    objects: tuple[str, ...]  # class name per instance
    stuff: tuple[str, ...]  # stuff present, in settings order


def image_streams(seed: int, split_code: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The (plan, render) generators of one image: a function of (seed, split, index) only."""
    plan, render = np.random.SeedSequence([seed, split_code, index]).spawn(2)
    return np.random.Generator(np.random.PCG64(plan)), np.random.Generator(np.random.PCG64(render))


def split_stream(seed: int, split_code: int, purpose: int) -> np.random.Generator:
    """A generator for a decision that needs the whole split at once (``purpose`` is one of the stream keys above)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, split_code, purpose])))


def sample_objects(rng: np.random.Generator, settings: DemoWorldSettings) -> tuple[str, ...]:
    """1..max_objects instances of one or two classes (repeats allowed), each chosen class at least once."""
    counts = np.arange(1, settings.max_objects + 1)
    weights = OBJECT_COUNT_DECAY ** (counts - 1.0)
    n = int(rng.choice(counts, p=weights / weights.sum()))
    n_classes = 2 if n >= 2 and len(settings.classes) >= 2 and rng.random() < TWO_CLASS_RATE else 1
    chosen = [settings.classes[i] for i in rng.choice(len(settings.classes), n_classes, replace=False)]
    extra = [chosen[i] for i in rng.integers(0, n_classes, n - n_classes)]
    return tuple(chosen + extra)


def _quota_pick(rng: np.random.Generator, candidates: list[int], k: int) -> list[int]:
    if k <= 0 or not candidates:
        return []
    return [candidates[i] for i in np.sort(rng.permutation(len(candidates))[:k])]


def assign_stuff(objects: list[tuple[str, ...]], settings: DemoWorldSettings, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Stuff per image for a whole split, by quota (see the module docstring)."""
    n = len(objects)
    present: list[set[str]] = [set() for _ in range(n)]
    for stuff in settings.stuff_classes:
        homed = {name for name in settings.classes if settings.home_of(name) == stuff}
        groups: dict[tuple[str, ...], list[int]] = {}
        empty: list[int] = []
        for i, names in enumerate(objects):
            key = tuple(sorted(homed.intersection(names)))
            (groups.setdefault(key, []) if key else empty).append(i)
        n_home, carry = 0, 0.0
        for key in sorted(groups):
            target = settings.home_stuff_rate * len(groups[key]) + carry
            k = int(np.floor(target + 0.5))
            carry = target - k
            for i in _quota_pick(rng, groups[key], k):
                present[i].add(stuff)
            n_home += k
        if homed:
            rate = settings.stuff_without_class_rate
            k_extra = int(np.floor(rate / (1 - rate) * n_home + 0.5))
        else:
            k_extra = int(np.floor(ORPHAN_STUFF_RATE * n + 0.5))
        if k_extra > len(empty):
            raise ValueError(
                f"demo world setting 'stuff_without_class_rate': {settings.stuff_without_class_rate} needs {stuff!r} in "
                f"{k_extra} images without its classes but only {len(empty)} images lack them (every image holds an "
                "object); lower the rate or add classes"
            )
        for i in _quota_pick(rng, empty, k_extra):
            present[i].add(stuff)
    return [tuple(s for s in settings.stuff_classes if s in p) for p in present]


def plan_images(settings: DemoWorldSettings, split_code: int, indices: list[int]) -> list[ImagePlan]:
    """Plans of the images ``indices`` of one split (a caption corpus plans only its scene pairs)."""
    objects = [sample_objects(image_streams(settings.seed, split_code, i)[PLAN_STREAM], settings) for i in indices]
    stuff = assign_stuff(objects, settings, split_stream(settings.seed, split_code, STUFF_QUOTAS))
    return [ImagePlan(o, s) for o, s in zip(objects, stuff)]
