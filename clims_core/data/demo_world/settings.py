"""The demo world's settings, checked once at construction so a bad config fails before any image is drawn."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Every sprite family the generator can draw, and the stuff each one lives on (its confounder).
HOME_STUFF: dict[str, str] = {
    "train": "railroad",
    "boat": "water",
    "car": "road",
    "aeroplane": "sky",
    "bird": "sky",
    "person": "grass",
}
KNOWN_CLASSES: tuple[str, ...] = ("aeroplane", "bird", "boat", "car", "person", "train")
KNOWN_STUFF: tuple[str, ...] = ("sky", "water", "railroad", "road", "grass", "sand")  # sand: home to no class by default
FLYING: frozenset[str] = frozenset({"aeroplane", "bird"})  # drawn inside the sky, larger rotations
# Which families share a body look (see ``looks``): the demo world's pairs.
DEFAULT_PARTNERS: tuple[tuple[str, str], ...] = (("aeroplane", "boat"), ("bird", "person"), ("car", "train"))
# The settings that make another world of the family (issue 15) beyond sizes, class lists and confounding rates.
WORLD_AXES: tuple[str, ...] = ("partners", "part_scale", "home_stuff", "stuff_hue_shift", "stuff_brightness")


@dataclass(frozen=True)
class DemoWorldSettings:
    """Everything that decides the demo world's bytes (with the code version)."""

    seed: int = 0
    image_size: int = 128
    n_train_aug: int = 2000  # image-level split
    labeled_fraction: float = 0.1  # `train` = this fraction of train_aug ids, pixel-labeled
    n_val: int = 400
    n_captions: int = 6000  # captions-corpus pairs (separate images, never in train/val)
    isolated_fraction: float = 0.45  # share of caption pairs that are isolated elements on plain backgrounds
    classes: tuple[str, ...] = ("aeroplane", "bird", "boat", "car", "person", "train")  # class index 1..C
    stuff_classes: tuple[str, ...] = ("sky", "water", "railroad", "road", "grass")  # stuff index 1..S
    home_stuff_rate: float = 0.9  # P(class's home stuff present | class present)
    stuff_without_class_rate: float = 0.15  # P(none of the stuff's classes present | stuff present)
    max_objects: int = 3  # 1..max_objects object instances per image
    jpeg_quality: int = 92
    # The family-of-worlds axes (their defaults draw the demo world, byte for byte):
    partners: Any = DEFAULT_PARTNERS  # pairs of families sharing a body look; a mapping class -> partner is accepted
    part_scale: float = 1.0  # multiplier of the distinctive part's area (in the family's frame)
    home_stuff: Any = ()  # overrides of HOME_STUFF, class -> stuff (a mapping, or (class, stuff) pairs)
    stuff_hue_shift: float = 0.0  # degrees the stuff textures' colours turn about the grey axis
    stuff_brightness: float = 1.0  # multiplier of the stuff textures' colours

    def __post_init__(self) -> None:
        # YAML gives lists; keep tuples so the settings stay hashable and compare equal.
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "stuff_classes", tuple(self.stuff_classes))
        object.__setattr__(self, "partners", _pairs(self.partners, "partners", symmetric=True))
        object.__setattr__(self, "home_stuff", _pairs(self.home_stuff, "home_stuff", symmetric=False))
        validate_settings(self)

    def home_of(self, name: str) -> str:
        """The home stuff of class ``name`` in this world (HOME_STUFF with the ``home_stuff`` overrides)."""
        return dict(self.home_stuff).get(name, HOME_STUFF[name])


def _pairs(value: Any, name: str, symmetric: bool) -> tuple[tuple[str, str], ...]:
    """A mapping or a list of pairs as sorted (key, value) pairs; with ``symmetric`` each pair sorted and once only."""
    if value is None:
        value = ()
    items = list(value.items()) if isinstance(value, Mapping) else list(value)
    pairs = []
    for item in items:
        if isinstance(item, str) or not isinstance(item, (tuple, list)) or len(item) != 2 or not all(isinstance(v, str) for v in item):
            _fail(name, "a mapping of class names to names", value if isinstance(value, Mapping) else items)
        pairs.append(tuple(sorted(item)) if symmetric else tuple(item))
    return tuple(sorted(set(pairs)))


def _fail(name: str, expected: str, value: Any) -> None:
    raise ValueError(f"demo world setting '{name}': expected {expected}, got {value!r}")


def _check_int(settings: DemoWorldSettings, name: str, low: int, high: int | None = None) -> None:
    value = getattr(settings, name)
    bound = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        _fail(name, bound, value)


def _check_fraction(settings: DemoWorldSettings, name: str, closed_low: bool = False, closed_high: bool = False) -> None:
    value = getattr(settings, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(name, "a number", value)
    low_ok = value >= 0 if closed_low else value > 0
    high_ok = value <= 1 if closed_high else value < 1
    if not (low_ok and high_ok):
        interval = f"{'[' if closed_low else '('}0, 1{']' if closed_high else ')'}"
        _fail(name, f"a fraction in {interval}", value)


def validate_settings(settings: DemoWorldSettings) -> None:
    """Raise ``ValueError`` naming the first bad field."""
    _check_int(settings, "seed", 0)
    _check_int(settings, "image_size", 32, 4096)
    _check_int(settings, "n_train_aug", 1, 999_999)
    _check_int(settings, "n_val", 1, 999_999)
    _check_int(settings, "n_captions", 0, 999_999)
    _check_int(settings, "max_objects", 1, 10)
    _check_int(settings, "jpeg_quality", 1, 100)
    _check_fraction(settings, "labeled_fraction", closed_high=True)
    _check_fraction(settings, "isolated_fraction", closed_low=True, closed_high=True)
    _check_fraction(settings, "home_stuff_rate")
    _check_fraction(settings, "stuff_without_class_rate")
    _check_number(settings, "part_scale", 0.2, 2.0)
    _check_number(settings, "stuff_hue_shift", -180.0, 180.0)
    _check_number(settings, "stuff_brightness", 0.5, 1.5)
    _check_partners(settings)
    _check_home_stuff(settings)
    if round(settings.labeled_fraction * settings.n_train_aug) < 1:
        _fail("labeled_fraction", f"at least one labeled image out of n_train_aug={settings.n_train_aug}", settings.labeled_fraction)

    for name, known in (("classes", KNOWN_CLASSES), ("stuff_classes", KNOWN_STUFF)):
        values = getattr(settings, name)
        if not values:
            _fail(name, f"a non-empty list drawn from {list(known)}", list(values))
        for value in values:
            if value not in known:
                _fail(name, f"names from {list(known)} (unknown: {value!r})", list(values))
        if len(set(values)) != len(values):
            _fail(name, "names without repeats", list(values))
    for name in settings.classes:
        if settings.home_of(name) not in settings.stuff_classes:
            _fail("stuff_classes", f"to include {settings.home_of(name)!r}, the home stuff of class {name!r}", list(settings.stuff_classes))


def _check_number(settings: DemoWorldSettings, name: str, low: float, high: float) -> None:
    value = getattr(settings, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        _fail(name, f"a number in [{low}, {high}]", value)


def _check_partners(settings: DemoWorldSettings) -> None:
    """Three pairs covering the six families once each (a family's body look is shared with exactly one other)."""
    pairs = settings.partners
    members = [name for pair in pairs for name in pair]
    shown = {a: b for a, b in pairs}
    for name in members:
        if name not in KNOWN_CLASSES:
            _fail("partners", f"class names from {list(KNOWN_CLASSES)} (unknown: {name!r})", shown)
    if any(a == b for a, b in pairs) or sorted(members) != sorted(KNOWN_CLASSES):
        _fail("partners", f"each of {list(KNOWN_CLASSES)} paired with exactly one other class", shown)


def _check_home_stuff(settings: DemoWorldSettings) -> None:
    shown = dict(settings.home_stuff)
    if len(shown) != len(settings.home_stuff):
        _fail("home_stuff", "one stuff per class", list(settings.home_stuff))
    for name, stuff in settings.home_stuff:
        if name not in KNOWN_CLASSES:
            _fail("home_stuff", f"class names from {list(KNOWN_CLASSES)} (unknown: {name!r})", shown)
        if stuff not in KNOWN_STUFF:
            _fail("home_stuff", f"stuff names from {list(KNOWN_STUFF)} (unknown: {stuff!r})", shown)
        if stuff == "sky" and name not in FLYING:
            _fail("home_stuff", f"a ground stuff for {name!r} (it stands on its home; only {sorted(FLYING)} fly)", shown)
