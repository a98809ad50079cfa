"""Caption text for the captions corpus: what is visible, objects and stuff, in a few plain templates.

Scene captions name every visible class (with counts) and, in 65% of them, every visible stuff ("two cars and a person
on a road under the sky."; the rest name only the objects); isolated elements read like product photos ("a photo of a train.", "a photo of railroad."), which is what
teaches a small CLIP to name an object or a stuff seen alone.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from clims_core.data.demo_world.settings import FLYING

PLURAL = {"person": "people"}
NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}
GROUND_WORDS = {"water": "water", "railroad": "a railroad", "road": "a road", "grass": "grass", "sand": "sand"}
SCENE_PREFIXES = ("", "a photo of ", "a picture of ")
# Share of scene captions that name only the objects ("a photo of a train and a car."), as web captions often leave
# the background unsaid; it ties the short object prompts CLIP is later asked about to whole scenes, not only to
# isolated product-photo objects.
OBJECTS_ONLY_SHARE = 0.35


def counted(name: str, count: int) -> str:
    """'a train', 'an aeroplane', 'two cars', 'three people'."""
    if count == 1:
        return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
    return f"{NUMBERS.get(count, str(count))} {PLURAL.get(name, name + 's')}"


def join_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def scene_caption(object_names: list[str], stuff: list[str], rng: np.random.Generator) -> str:
    """Caption of a scene from its visible instances (class per instance) and visible stuff names."""
    counts = Counter(object_names)
    distinct = list(dict.fromkeys(object_names))
    order = [distinct[i] for i in rng.permutation(len(distinct))]
    subject = join_words([counted(name, counts[name]) for name in order])
    grounds = [GROUND_WORDS[name] for name in stuff if name in GROUND_WORDS]
    sky = "sky" in stuff
    all_flying = all(name in FLYING for name in order)
    if grounds:
        where = f"{'above' if all_flying else 'on'} {join_words(grounds)}"
        if sky:
            where = f"in the sky {where}" if all_flying else f"{where} under the sky"
    elif sky:
        where = "in the sky" if all_flying else "under the sky"
    else:
        where = "indoors" if rng.random() < 0.5 else "in a room"
    prefix = SCENE_PREFIXES[int(rng.integers(len(SCENE_PREFIXES)))]
    if rng.random() < OBJECTS_ONLY_SHARE:
        return f"{prefix or 'a photo of '}{subject}."
    return f"{prefix}{subject} {where}."


def isolated_object_caption(name: str, count: int) -> str:
    return f"a photo of {counted(name, count)}."


def isolated_stuff_caption(name: str) -> str:
    return f"a photo of {name}."
