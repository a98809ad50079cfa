"""The family of worlds (issue 15): the default world's pinned bytes, each new axis, and the named worlds of config/worlds."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import ndimage
from snakemake.utils import update_config

from clims_core.config import WORLD_AXIS_KEYS, validate_config, demo_world_arguments, validate_schema
from clims_core.data.demo_world import DemoWorldSettings, generate_world
from clims_core.data.demo_world.looks import BODY_LOOK_OF, body_looks_for, partner
from clims_core.data.demo_world.settings import DEFAULT_PARTNERS, WORLD_AXES
from clims_core.data.demo_world.sprites import FAMILIES, render_sprite, sample_aspect
from clims_core.data.demo_world.stuff import WorldStyle, build_bank, paint_sky, shade_stuff, style_of, world_bank
from clims_core.metrics.world_study import world_overlays
from clims_core.tags import tag
from tests.data.test_demo_world import _near, _pure_pixels

REPO = Path(__file__).resolve().parents[2]
WORLDS = list(world_overlays(REPO / "config" / "worlds").values())  # splits.yaml is not a world
OVERLAY_KEYS = {"demo_world", "data.classes", "data.stuff_classes", "eval.confounders", "report.figure_classes"}

# sha256 over "<path>\0<sha256 of the file>\n" of every file of DemoWorldSettings(**PINNED), sorted by path.
PINNED = dict(image_size=64, n_train_aug=40, n_val=8, n_captions=30)
PINNED_DIGEST = "43333a85ab848ad9f06681654b086092fe899b6e10b6056466889e92412e96cb"


def world_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(root)}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def test_the_default_world_keeps_its_bytes(tmp_path):
    """The demo world is where every default was tuned and every README number measured, so its bytes must not move
    when the generator learns new axes (issue 15): each axis at its default must draw exactly what it drew before.
    The digest was computed with the generator as it was before the family-of-worlds settings existed (commit bce9211).
    If a change of the default world is intended, it invalidates those measurements: rerun them and update this pin
    in the same change, saying so."""
    generate_world(DemoWorldSettings(**PINNED), tmp_path / "world", workers=1, progress=False)
    assert world_digest(tmp_path / "world") == PINNED_DIGEST


# -- the named worlds -------------------------------------------------------------------------------------------------


def _keys(node: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in node.items():
        name = f"{prefix}{key}"
        if prefix == "" and key == "demo_world":
            out.add("demo_world")
        elif isinstance(value, dict) and name != "eval.confounders":
            out |= _keys(value, f"{name}.")
        else:
            out.add(name)
    return out


def world_config(path: Path) -> dict:
    """The config Snakemake runs with ``--configfile config/config.yaml <path>`` (merged key by key), validated."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    update_config(config, yaml.safe_load(path.read_text(encoding="utf-8")))
    return validate_config(config, REPO)


def test_there_are_worlds_and_the_readme_lists_each():
    assert len(WORLDS) >= 6
    readme = (REPO / "config" / "worlds" / "README.md").read_text(encoding="utf-8")
    for path in WORLDS:
        assert f"`{path.stem}`" in readme, path.stem


@pytest.mark.parametrize("path", WORLDS, ids=lambda p: p.stem)
def test_world_files_validate_and_build_their_settings(path):
    overlay = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _keys(overlay) <= OVERLAY_KEYS, _keys(overlay) - OVERLAY_KEYS
    config = world_config(path)
    settings = DemoWorldSettings(**demo_world_arguments(config))
    assert config["demo_world"]["enabled"]
    assert set(config["eval"]["confounders"]) <= set(settings.classes)
    for name, stuff in config["eval"]["confounders"].items():
        assert stuff == settings.home_of(name), (name, stuff)  # the reported pairs are the world's confounders
    assert tag(demo_world_arguments(config)) != tag(demo_world_arguments(world_config(REPO / "config" / "config.yaml")))


def test_the_axes_at_their_defaults_leave_the_demo_worlds_arguments_and_tag_alone():
    config = validate_schema(yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8")))
    arguments = demo_world_arguments(config)
    assert not set(WORLD_AXIS_KEYS) & set(arguments) and set(WORLD_AXIS_KEYS) == set(WORLD_AXES)
    settings = DemoWorldSettings(**arguments)
    assert settings == DemoWorldSettings(**{**arguments, **{key: config["demo_world"][key] for key in WORLD_AXIS_KEYS}})
    assert style_of(settings) == WorldStyle()


@pytest.mark.parametrize("path", [p for p in WORLDS if p.stem in ("shifted_palette", "swapped_partners", "small_parts", "beach")], ids=lambda p: p.stem)
def test_world_parts_stay_clear_of_every_stuff_and_other_body(path):
    """The partial-activation design (a part's colour is unique) holds in the worlds that change colours or parts."""
    settings = DemoWorldSettings(**{**demo_world_arguments(world_config(path)), "image_size": 64})
    bank = world_bank(settings)
    rng = np.random.default_rng(0)
    pixels = {name: _pure_pixels(name, rng, bank, n=8) for name in FAMILIES}
    stuff = {name: np.concatenate([t.reshape(-1, 3) for t in tiles]) for name, tiles in bank.tiles.items()}
    sky = np.zeros((64, 64, 3), np.float32)
    paint_sky(sky, 0, 64, rng, bank)
    stuff["sky"] = sky.reshape(-1, 3)
    for name, (part, _) in pixels.items():
        for other, colours in stuff.items():
            assert _near(part, colours, rng) > 40, (name, other)
        for other, (_, body) in pixels.items():
            assert _near(part, body, rng) > 40, (name, "body of", other)


# -- each axis changes what it should ---------------------------------------------------------------------------------


def _part_shares(name: str, part_scale: float) -> list[float]:
    bank = build_bank(0, 64, WorldStyle(part_scale=part_scale))
    rng = np.random.default_rng(1)
    shares = []
    for angle in (-10.0, 0.0, 10.0):
        for area in (130.0, 1000.0):
            sprite = render_sprite(name, rng, bank, area, sample_aspect(rng, name), angle, bool(angle > 0))
            _, n = ndimage.label(sprite.label > 0, structure=np.ones((3, 3)))
            assert n == 1, (name, part_scale, angle, area)
            shares.append(sprite.part_area / sprite.area)
    return shares


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_part_scale_shrinks_the_part_and_keeps_one_object(name):
    full, small = np.mean(_part_shares(name, 1.0)), np.mean(_part_shares(name, 0.6))
    # the part's area times 0.6 while the body keeps its own: share p -> about 0.6 p / (0.6 p + 1 - p)
    assert 0.55 * full < small < 0.8 * full, (name, full, small)
    assert np.mean(_part_shares(name, 1.5)) > 1.15 * full


def test_partners_choose_which_bodies_match():
    pairs = DemoWorldSettings(partners={"train": "boat", "car": "aeroplane", "bird": "person"}).partners
    assert pairs == (("aeroplane", "car"), ("bird", "person"), ("boat", "train"))
    look_of = body_looks_for(pairs)
    assert body_looks_for(DEFAULT_PARTNERS) == BODY_LOOK_OF and len(set(look_of.values())) == 3
    bank = build_bank(0, 64, WorldStyle(look_of=tuple(sorted(look_of.items()))))
    rng = np.random.default_rng(0)
    medians = {name: np.median(_pure_pixels(name, rng, bank, n=6)[1], axis=0) for name in FAMILIES}
    for name in FAMILIES:
        mate = partner(name, look_of)
        assert mate == dict(pairs + tuple((b, a) for a, b in pairs))[name]
        assert np.abs(medians[name] - medians[mate]).max() < 20, (name, mate)
        for other in FAMILIES:
            if other not in (name, mate):
                assert np.linalg.norm(medians[name] - medians[other]) > 60, (name, other)
    assert np.linalg.norm(medians["car"] - medians["train"]) > 60  # the demo world's partners no longer match


def test_home_stuff_moves_a_class_onto_its_new_stuff(tmp_path):
    settings = DemoWorldSettings(image_size=32, n_train_aug=200, n_val=5, n_captions=0, home_stuff={"car": "grass"}, home_stuff_rate=0.8)
    assert settings.home_of("car") == "grass" and settings.home_of("train") == "railroad"
    statistics = generate_world(settings, tmp_path / "w", progress=False)
    rates = statistics["splits"]["train_aug"]
    assert abs(rates["p_home_stuff_given_class"]["car"] - 0.8) < 0.06
    assert rates["cooccurrence"]["car"]["grass"] == rates["p_home_stuff_given_class"]["car"]
    assert rates["cooccurrence"]["car"]["road"] < 0.35  # road is home to no class now: a distractor in ~20% of images
    assert rates["p_no_class_given_stuff"]["road"] is None
    assert statistics["settings"]["home_stuff"] == [["car", "grass"]]


def test_stuff_palette_shift_turns_stuff_colours_only():
    plain, shifted = build_bank(0, 64), build_bank(0, 64, WorldStyle(hue_shift=-40.0, brightness=0.85))
    rgb = plain.tiles["grass"][0]
    assert shade_stuff(rgb, WorldStyle()) is rgb
    turned = shifted.tiles["grass"][0]
    assert np.abs(turned - rgb).mean() > 10
    assert turned.mean() < rgb.mean()  # darker
    grey = np.full((4, 3), 100.0, np.float32)
    assert np.allclose(shade_stuff(grey, WorldStyle(hue_shift=90.0)), grey, atol=1e-3)  # greys keep their colour
    for name in FAMILIES:  # objects draw the same pixels whatever the stuff palette
        a = render_sprite(name, np.random.default_rng(3), plain, 800.0, 1.0, 0.0, False)
        b = render_sprite(name, np.random.default_rng(3), shifted, 800.0, 1.0, 0.0, False)
        assert np.array_equal(a.colour, b.colour) and np.array_equal(a.label, b.label)


@pytest.mark.parametrize(
    "field, value",
    [
        ("partners", {"train": "car"}),
        ("partners", {"train": "car", "boat": "aeroplane", "bird": "bird"}),
        ("partners", {"train": "car", "car": "boat", "bird": "person"}),
        ("partners", {"train": "cat", "boat": "aeroplane", "bird": "person"}),
        ("partners", "train"),
        ("part_scale", 0.1),
        ("part_scale", True),
        ("home_stuff", {"car": "sky"}),
        ("home_stuff", {"car": "lava"}),
        ("home_stuff", {"cat": "road"}),
        ("home_stuff", [("car", "grass"), ("car", "water")]),
        ("stuff_hue_shift", 200),
        ("stuff_brightness", 2.0),
    ],
)
def test_bad_axis_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"'{field}'"):
        DemoWorldSettings(**{field: value})


def test_a_moved_home_must_be_among_the_stuff_classes():
    with pytest.raises(ValueError, match="'stuff_classes'.*grass"):
        DemoWorldSettings(classes=("car",), stuff_classes=("road",), home_stuff={"car": "grass"})
    assert DemoWorldSettings(classes=("bird",), stuff_classes=("water",), home_stuff={"bird": "water"}).home_of("bird") == "water"


def test_sand_is_a_stuff_of_its_own(tmp_path):
    """The stuff added after the demo world (from its own texture stream, so the demo's tiles keep their bytes)."""
    bank = build_bank(0, 32)
    assert set(bank.tiles) == {"water", "railroad", "road", "grass", "sand"}
    medians = {name: np.median(np.concatenate([t.reshape(-1, 3) for t in tiles]), axis=0) for name, tiles in bank.tiles.items()}
    for other in ("water", "railroad", "road", "grass"):
        assert np.linalg.norm(medians["sand"] - medians[other]) > 25, other
    settings = DemoWorldSettings(image_size=32, n_train_aug=40, n_val=5, n_captions=20, isolated_fraction=0.0,
                                 stuff_classes=("sky", "water", "railroad", "road", "sand"), home_stuff={"person": "sand"})
    statistics = generate_world(settings, tmp_path / "w", progress=False)
    assert statistics["splits"]["train_aug"]["p_home_stuff_given_class"]["person"] >= 0.75
    captions = (tmp_path / "w" / "captions" / "captions.tsv").read_text(encoding="utf-8")
    assert "on sand" in captions


def test_a_null_confounder_drops_the_pair():
    config = copy.deepcopy(yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8")))
    config["eval"]["confounders"]["train"] = None
    assert "train" not in validate_config(config, REPO)["eval"]["confounders"]
