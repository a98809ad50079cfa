"""The demo world's statistics, measured on what was drawn (not on the plan), written beside it.

They document the designed difficulty: how often each class comes with its home stuff, how often each stuff comes
without its classes, how large objects are, and how much of each object is its distinctive part.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from clims_core.data.demo_world.settings import WORLD_AXES, DemoWorldSettings


@dataclass(frozen=True)
class RenderRecord:
    """What one rendered image contributes to the statistics (and, for captions, its caption)."""

    image_id: str
    split: str  # train_aug, val or captions
    kind: str  # scene, isolated_object or isolated_stuff
    classes: tuple[str, ...]  # classes with visible pixels
    stuff: tuple[str, ...]  # stuff with visible pixels
    instances: tuple[tuple[str, int, int, int], ...]  # (class, visible px, whole-sprite px, part px)
    caption: str | None = None


def _r(value: float) -> float:
    return round(float(value), 6)


def _ratio(num: int, den: int) -> float | None:
    return _r(num / den) if den else None


def _distribution(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p10": None, "p50": None, "p90": None}
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": _r(arr.mean()), "p10": _r(np.percentile(arr, 10)), "p50": _r(np.percentile(arr, 50)), "p90": _r(np.percentile(arr, 90))}


def split_statistics(records: list[RenderRecord], settings: DemoWorldSettings) -> dict:
    """Class and stuff frequencies and the confounder rates of one split."""
    n = len(records)
    with_class = Counter(name for r in records for name in r.classes)
    with_stuff = Counter(name for r in records for name in r.stuff)
    pair = Counter((c, s) for r in records for c in r.classes for s in r.stuff)
    no_class = Counter()
    for r in records:
        for s in r.stuff:
            if not any(settings.home_of(c) == s for c in r.classes):
                no_class[s] += 1
    homed = {s for s in settings.stuff_classes if any(settings.home_of(c) == s for c in settings.classes)}
    return {
        "images": n,
        "objects_per_image": _r(sum(len(r.instances) for r in records) / max(1, n)),
        "no_stuff_fraction": _r(sum(not r.stuff for r in records) / max(1, n)),
        "class_count": {c: with_class[c] for c in settings.classes},
        "class_frequency": {c: _r(with_class[c] / max(1, n)) for c in settings.classes},
        "stuff_frequency": {s: _r(with_stuff[s] / max(1, n)) for s in settings.stuff_classes},
        "cooccurrence": {c: {s: _ratio(pair[c, s], with_class[c]) for s in settings.stuff_classes} for c in settings.classes},
        "p_home_stuff_given_class": {c: _ratio(pair[c, settings.home_of(c)], with_class[c]) for c in settings.classes},
        # a stuff that is home to no configured class is always "without its classes": reported as null
        "p_no_class_given_stuff": {s: _ratio(no_class[s], with_stuff[s]) if s in homed else None for s in settings.stuff_classes},
    }


def compute_statistics(settings: DemoWorldSettings, splits: dict[str, list[RenderRecord]], captions: list[RenderRecord]) -> dict:
    """The statistics.json content: settings, per-split rates, object sizes, part shares, captions corpus counts."""
    area = settings.image_size**2
    visible: dict[str, list[float]] = {c: [] for c in settings.classes}
    whole: dict[str, list[float]] = {c: [] for c in settings.classes}
    part: dict[str, list[float]] = {c: [] for c in settings.classes}
    for name in ("train_aug", "val"):
        for record in splits[name]:
            for cls, vis, full, part_px in record.instances:
                visible[cls].append(vis / area)
                whole[cls].append(full / area)
                part[cls].append(part_px / max(1, full))
    kinds = Counter(r.kind for r in captions)
    per_split = {name: split_statistics(records, settings) for name, records in splits.items()}
    defaults = DemoWorldSettings()
    # The family-of-worlds axes are recorded only where they leave the demo world's value, so its file keeps its bytes.
    recorded = {key: value for key, value in asdict(settings).items() if key not in WORLD_AXES or value != getattr(defaults, key)}
    return {
        "settings": {key: [list(v) if isinstance(v, tuple) else v for v in value] if isinstance(value, tuple) else value for key, value in recorded.items()},
        "counts": {**{name: len(records) for name, records in splits.items()}, "captions": len(captions)},
        "splits": per_split,
        "object_area_fraction": {c: {"visible": _distribution(visible[c]), "whole": _distribution(whole[c])} for c in settings.classes},
        "part_body_fraction": {
            c: {"part": _r(np.mean(part[c])) if part[c] else None, "body": _r(1 - np.mean(part[c])) if part[c] else None} for c in settings.classes
        },
        "captions": {
            "pairs": len(captions),
            "scene": kinds["scene"],
            "isolated": kinds["isolated_object"] + kinds["isolated_stuff"],
            "isolated_objects": kinds["isolated_object"],
            "isolated_stuff": kinds["isolated_stuff"],
            "isolated_object_classes": dict(sorted(Counter(r.classes[0] for r in captions if r.kind == "isolated_object").items())),
            "isolated_stuff_names": dict(sorted(Counter(r.stuff[0] for r in captions if r.kind == "isolated_stuff").items())),
        },
    }
