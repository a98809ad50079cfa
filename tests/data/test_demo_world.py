"""The demo world: determinism, VOC layout, calibrated confounders, and the part/body colour design."""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from clims_core.data.demo_world import HOME_STUFF, DemoWorldSettings, generate_world
from clims_core.data.demo_world.looks import BODY_LOOK_OF, partner
from clims_core.data.demo_world.sprites import BODY, FAMILIES, PART, render_sprite, sample_aspect
from clims_core.data.demo_world.stuff import build_bank, paint_neutral, paint_sky
from clims_core.io.masks import load_mask

SMALL = dict(image_size=64, n_train_aug=300, n_val=60, n_captions=200)


def tree_hash(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def read_list(root: Path, split: str) -> list[str]:
    return (root / "VOC" / "ImageSets" / "Segmentation" / f"{split}.txt").read_text(encoding="utf-8").split()


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo") / "world"
    statistics = generate_world(DemoWorldSettings(**SMALL), root, workers=1, progress=False)
    return root, statistics


# -- determinism ------------------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes_whatever_the_workers(small_world, tmp_path):
    root, _ = small_world
    again = tmp_path / "again"
    generate_world(DemoWorldSettings(**SMALL), again, workers=2, progress=False)
    assert tree_hash(again) == tree_hash(root)


def test_another_seed_gives_another_world(tmp_path):
    tiny = dict(image_size=32, n_train_aug=20, n_val=10, n_captions=10)
    generate_world(DemoWorldSettings(seed=1, **tiny), tmp_path / "a", progress=False)
    generate_world(DemoWorldSettings(seed=2, **tiny), tmp_path / "b", progress=False)
    a, b = tree_hash(tmp_path / "a"), tree_hash(tmp_path / "b")
    jpegs = [k for k in a if k.endswith(".jpg")]
    assert jpegs == [k for k in b if k.endswith(".jpg")]  # same ids; the labeled subset may differ
    assert sum(a[k] != b[k] for k in jpegs) == len(jpegs)


def test_regenerating_replaces_the_folder_and_leaves_no_temporaries(tmp_path):
    tiny = DemoWorldSettings(image_size=32, n_train_aug=10, n_val=4, n_captions=4)
    root = tmp_path / "world"
    generate_world(tiny, root, progress=False)
    (root / "stale.txt").write_text("old")
    generate_world(tiny, root, progress=False)
    assert not (root / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["world"]


# -- layout -----------------------------------------------------------------------------------------------------------


def test_splits_and_files_follow_the_voc_layout(small_world):
    root, _ = small_world
    voc = root / "VOC"
    train_aug, train, val = (read_list(root, s) for s in ("train_aug", "train", "val"))
    assert train_aug == sorted(train_aug) and train == sorted(train) and val == sorted(val)
    assert train_aug == [f"w{i:06d}" for i in range(300)] and val == [f"v{i:06d}" for i in range(60)]
    assert set(train) <= set(train_aug) and len(train) == 30
    for image_id in train_aug + val:
        assert (voc / "JPEGImages" / f"{image_id}.jpg").is_file()
        assert (voc / "Annotations" / f"{image_id}.xml").is_file()
        assert (voc / "SegmentationStuff" / f"{image_id}.png").is_file()
    masks = {p.stem for p in (voc / "SegmentationClass").iterdir()}
    assert masks == set(train) | set(val)  # train_aug-only images have image-level labels only, like real data
    assert {p.stem for p in (voc / "JPEGImages").iterdir()} == set(train_aug) | set(val)


def test_masks_and_annotations_agree(small_world):
    root, _ = small_world
    voc = root / "VOC"
    classes = DemoWorldSettings().classes
    for image_id in read_list(root, "train") + read_list(root, "val"):
        with Image.open(voc / "JPEGImages" / f"{image_id}.jpg") as image:
            assert image.size == (64, 64) and image.mode == "RGB"
        mask = load_mask(voc / "SegmentationClass" / f"{image_id}.png")
        stuff = load_mask(voc / "SegmentationStuff" / f"{image_id}.png")
        assert mask.shape == stuff.shape == (64, 64)
        values = set(np.unique(mask).tolist())
        assert values <= set(range(len(classes) + 1)) | {255}
        assert set(np.unique(stuff).tolist()) <= set(range(6))
        assert not np.any(stuff[(mask > 0)] > 0), "stuff under objects is not visible"
        annotation = ElementTree.parse(voc / "Annotations" / f"{image_id}.xml").getroot()
        assert annotation.findtext("filename") == f"{image_id}.jpg"
        assert annotation.findtext("size/width") == "64" and annotation.findtext("size/depth") == "3"
        names = set()
        for obj in annotation.iter("object"):
            names.add(obj.findtext("name"))
            assert obj.findtext("pose") == "Unspecified" and obj.findtext("difficult") == "0"
            box = [int(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")]
            assert 1 <= box[0] <= box[2] <= 64 and 1 <= box[1] <= box[3] <= 64
        assert names == {classes[v - 1] for v in values if 0 < v < 255}


def test_ignore_band_is_thin(small_world):
    root, _ = small_world
    masks = [load_mask(p) for p in sorted((root / "VOC" / "SegmentationClass").iterdir())]
    ignore = sum(int((m == 255).sum()) for m in masks)
    objects = sum(int((m > 0).sum()) for m in masks)
    assert 0 < ignore < 0.4 * objects


def test_captions_corpus(small_world):
    root, statistics = small_world
    lines = (root / "captions" / "captions.tsv").read_text(encoding="utf-8").splitlines()
    pairs = dict(line.split("\t") for line in lines)
    assert sorted(pairs) == [f"c{i:06d}" for i in range(200)]
    assert {p.stem for p in (root / "captions" / "images").iterdir()} == set(pairs)
    assert statistics["captions"]["isolated"] == 90 and statistics["captions"]["scene"] == 110
    assert abs(statistics["captions"]["isolated_objects"] - statistics["captions"]["isolated_stuff"]) <= 1
    isolated = re.compile(r"a photo of ((a|an|two|three) [a-z]+|sky|water|railroad|road|grass)\.")
    # isolated pairs, plus the scene captions that name only the objects (OBJECTS_ONLY_SHARE, about a third)
    object_only_scenes = sum(bool(isolated.fullmatch(c)) for c in pairs.values()) - 90
    assert 0.15 * 110 <= object_only_scenes <= 0.55 * 110
    assert all(c.endswith(".") and c == c.lower() for c in pairs.values())
    assert any("railroad" in c for c in pairs.values()) and any("train" in c for c in pairs.values())


# -- statistics: the designed confounders ------------------------------------------------------------------------------


def test_confounder_rates_land_in_range(tmp_path):
    settings = DemoWorldSettings(image_size=64, n_train_aug=1200, n_val=300, n_captions=40)
    statistics = generate_world(settings, tmp_path / "medium", workers=2, progress=False)
    assert json.loads((tmp_path / "medium" / "statistics.json").read_text()) == json.loads(json.dumps(statistics))
    for split in ("train_aug", "val"):
        rates = statistics["splits"][split]
        for name in settings.classes:
            assert 0.85 <= rates["p_home_stuff_given_class"][name] <= 0.95, (split, name)
            assert rates["cooccurrence"][name][HOME_STUFF[name]] == rates["p_home_stuff_given_class"][name]
        for name in settings.stuff_classes:
            assert 0.10 <= rates["p_no_class_given_stuff"][name] <= 0.20, (split, name)
        assert all(f > 0.1 for f in rates["class_frequency"].values())
    for name in settings.classes:
        assert 0.15 <= statistics["part_body_fraction"][name]["part"] <= 0.35, name
        area = statistics["object_area_fraction"][name]["whole"]
        assert 0.02 <= area["p10"] and area["p90"] <= 0.3, (name, area)


# -- sprites: partial activation by design ------------------------------------------------------------------------------


def _pure_pixels(name: str, rng: np.random.Generator, bank, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Part and body colours of ``n`` renders, one pixel in from every edge (edges blend neighbouring colours)."""
    parts, bodies = [], []
    for _ in range(n):
        sprite = render_sprite(name, rng, bank, 2500.0, sample_aspect(rng, name), 0.0, False)
        colour = sprite.colour / np.maximum(sprite.alpha[..., None], 1e-6)
        parts.append(colour[ndimage.binary_erosion(sprite.label == PART)])
        bodies.append(colour[ndimage.binary_erosion(sprite.label == BODY)])
    return np.concatenate(parts), np.concatenate(bodies)


def _near(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n: int = 600) -> float:
    """1st percentile over pixels of ``a`` of the distance to the nearest pixel of ``b`` (RGB, subsampled)."""
    a = a[rng.choice(len(a), min(n, len(a)), replace=False)]
    b = b[rng.choice(len(b), min(n, len(b)), replace=False)]
    return float(np.percentile(np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)).min(1), 1))


def test_parts_have_unique_colours_and_partners_share_bodies():
    bank = build_bank(0, 64)
    rng = np.random.default_rng(0)
    pixels = {name: _pure_pixels(name, rng, bank) for name in FAMILIES}
    stuff = {name: np.concatenate([t.reshape(-1, 3) for t in tiles]) for name, tiles in bank.tiles.items()}
    skies, rooms = np.zeros((64, 64, 3), np.float32), np.zeros((64, 64, 3), np.float32)
    paint_sky(skies, 0, 64, rng, bank)
    paint_neutral(rooms, 0, 32, False, rng)
    paint_neutral(rooms, 32, 64, True, rng)
    stuff["sky"], stuff["indoor"] = skies.reshape(-1, 3), rooms.reshape(-1, 3)
    for name, (part, _) in pixels.items():
        for other, colours in stuff.items():
            assert _near(part, colours, rng) > 40, (name, other)
        for other, (other_part, other_body) in pixels.items():
            if other != name:
                assert _near(part, other_part, rng) > 40, (name, other)
            assert _near(part, other_body, rng) > 40, (name, "body of", other)
    medians = {name: np.median(body, axis=0) for name, (_, body) in pixels.items()}
    for name in FAMILIES:
        mate = partner(name)
        assert BODY_LOOK_OF[name] == BODY_LOOK_OF[mate]
        assert np.abs(medians[name] - medians[mate]).max() < 20, (name, mate)
        for other in FAMILIES:
            if BODY_LOOK_OF[other] != BODY_LOOK_OF[name]:
                assert np.linalg.norm(medians[name] - medians[other]) > 60, (name, other)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_sprites_are_one_connected_object(name):
    bank = build_bank(0, 64)
    rng = np.random.default_rng(1)
    for angle in (-10.0, 0.0, 10.0):
        for area in (130.0, 1000.0):
            sprite = render_sprite(name, rng, bank, area, sample_aspect(rng, name), angle, bool(angle > 0))
            _, n = ndimage.label(sprite.label > 0, structure=np.ones((3, 3)))
            assert n == 1, (name, angle, area)
            assert 0.12 < sprite.part_area / sprite.area < 0.4, (name, angle, area)


# -- settings ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("classes", ("aeroplane", "cat")),
        ("classes", ()),
        ("classes", ("car", "car")),
        ("stuff_classes", ("sky", "water", "railroad", "road", "lava")),
        ("labeled_fraction", 0.0),
        ("labeled_fraction", 1.5),
        ("isolated_fraction", -0.1),
        ("home_stuff_rate", 1.0),
        ("stuff_without_class_rate", 0.0),
        ("image_size", 16),
        ("n_train_aug", 0),
        ("n_val", 0),
        ("max_objects", 0),
        ("jpeg_quality", 0),
        ("seed", -1),
    ],
)
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"'{field}'"):
        DemoWorldSettings(**{field: value})


def test_a_class_needs_its_home_stuff():
    with pytest.raises(ValueError, match="'stuff_classes'.*railroad"):
        DemoWorldSettings(classes=("train",), stuff_classes=("sky",))


def test_yaml_lists_are_accepted_and_workers_checked(tmp_path):
    settings = DemoWorldSettings(classes=["car", "train"], stuff_classes=["road", "railroad"])
    assert settings.classes == ("car", "train") and hash(settings)
    with pytest.raises(ValueError, match="workers"):
        generate_world(settings, tmp_path / "w", workers=0)
