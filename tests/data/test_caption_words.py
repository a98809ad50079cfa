"""The word targets of captions: what a caption names, in the vocabulary's own forms, singular or plural."""

from __future__ import annotations

import numpy as np
import pytest

from clims_core.data.caption_words import caption_targets
from clims_core.data.demo_world.captions import isolated_object_caption, isolated_stuff_caption, scene_caption

CLASSES = ["aeroplane", "bird", "boat", "car", "person", "train"]
STUFF = ["sky", "water", "railroad", "road", "grass"]
WORDS = tuple(CLASSES + STUFF)


def named(caption: str, words=WORDS, names=None) -> set[str]:
    row = caption_targets([caption], words, names)[0]
    return {w for w, on in zip(words, row) if on}


@pytest.mark.parametrize("caption, expected", [
    ("two cars and a person on a road under the sky.", {"car", "person", "road", "sky"}),
    ("a photo of three people.", {"person"}),
    ("a picture of a train on a railroad.", {"train", "railroad"}),  # not 'road'
    ("a photo of railroad.", {"railroad"}),
    ("An Aeroplane and two birds in the sky above water.", {"aeroplane", "bird", "sky", "water"}),
    ("a boat indoors.", {"boat"}),
    ("a trainer and a carpet on the grasses under grey skies.", {"grass", "sky"}),  # no 'train', no 'car'
])
def test_word_targets_of_hand_written_captions(caption, expected):
    assert named(caption) == expected


def test_multi_word_names_and_plurals():
    words = ("diningtable", "pottedplant", "bus", "tvmonitor")
    names = {"diningtable": "dining table", "pottedplant": "potted plant", "tvmonitor": "tv monitor"}
    assert named("two dining tables and a potted-plant.", words, names) == {"diningtable", "pottedplant"}
    assert named("three buses by a tv_monitor; a diningtable.", words, names) == {"bus", "tvmonitor", "diningtable"}
    assert named("a table and a plant.", words, names) == set()


def test_demo_world_captions_name_their_objects_and_stuff():
    """Every caption the demo world's templates write names all its objects, and its stuff all or not at all."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        objects = list(rng.choice(CLASSES, size=int(rng.integers(1, 4))))
        stuff = [s for s in STUFF if rng.random() < 0.4]
        caption = scene_caption(objects, stuff, rng)
        found = named(caption)
        assert found & set(CLASSES) == set(objects), caption
        assert found & set(STUFF) in (set(stuff), set()), caption
    for count in (1, 2, 3):
        assert named(isolated_object_caption("person", count)) == {"person"}
    assert named(isolated_stuff_caption("railroad")) == {"railroad"}
