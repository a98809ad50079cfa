"""Composing a scene from its plan: stuff bands, objects standing on their home stuff, occlusion, masks.

Sky (when present) fills the top down to a horizon; ground stuff lies below as horizontal bands; with no stuff the scene
is an indoor wall and floor (stuff index 0). Ground objects stand with their lowest pixel inside their home band (or,
when the plan left the home out, on another band or the floor); flying objects stay inside the sky, or anywhere when
there is no sky. Later objects cover earlier ones, but every object keeps a good share of itself visible and every
planned stuff stays visible, so the rendered content matches the plan the statistics were calibrated on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clims_core.data.demo_world.plan import ImagePlan
from clims_core.data.demo_world.settings import FLYING, DemoWorldSettings
from clims_core.data.demo_world.sprites import Sprite, box_size, render_sprite, rotated_extent, sample_angle, sample_aspect
from clims_core.data.demo_world.stuff import TextureBank, crop, paint_ground, paint_neutral, paint_sky
from clims_core.io.masks import IGNORE_INDEX

MIN_AREA, MAX_AREA = 0.03, 0.25  # object area as a fraction of the image (log-uniform)
MAX_TOTAL_AREA = 0.5  # all objects of a scene together
MIN_KEPT = 0.4  # an object keeps at least this share of its in-image pixels when later objects cover it
MIN_INSIDE = 0.6  # share of an object's pixels inside the image
MIN_STUFF_KEPT = 0.3  # share of a stuff region left uncovered by objects
PLACEMENT_TRIES, SHRINKS, LAYOUT_TRIES = 12, 2, 3


@dataclass(frozen=True)
class Region:
    """Rows ``top:bottom`` of one background element: a stuff name, "wall" or "floor"."""

    kind: str
    top: int
    bottom: int


@dataclass(frozen=True)
class InstanceRecord:
    """One visible object instance, as the XML and the statistics need it."""

    name: str
    bbox: tuple[int, int, int, int]  # xmin, ymin, xmax, ymax, 1-based inclusive like VOC
    truncated: bool  # cut by the image border
    occluded: bool  # partly covered by a later object
    visible_px: int
    full_px: int  # the whole sprite's pixels (before border crop and occlusion)
    part_px: int  # the whole sprite's distinctive-part pixels


@dataclass(frozen=True)
class SceneResult:
    image: np.ndarray  # (S, S, 3) uint8
    class_mask: np.ndarray  # (S, S) uint8: 0, 1..C, 255 on a 1-px band inside object borders
    stuff_mask: np.ndarray  # (S, S) uint8: 0, 1..S (0 under objects)
    instances: list[InstanceRecord]


@dataclass
class _Placed:
    name: str
    sprite: Sprite
    y0: int
    x0: int
    inside_px: int


def make_layout(plan: ImagePlan, rng: np.random.Generator, size: int) -> list[Region]:
    """Background regions top to bottom, covering every row."""
    sky = "sky" in plan.stuff
    grounds = [plan.stuff[i] for i in rng.permutation(len(plan.stuff)) if plan.stuff[i] != "sky"]
    standing = any(name not in FLYING for name in plan.objects)
    flying = any(name in FLYING for name in plan.objects)
    regions: list[Region] = []
    if sky and grounds:
        top = int(size * (rng.uniform(0.45, 0.62) if flying else rng.uniform(0.3, 0.55)))
        regions.append(Region("sky", 0, top))
    elif sky:
        if not standing:
            return [Region("sky", 0, size)]
        top = int(size * rng.uniform(0.45, 0.7))
        return [Region("sky", 0, top), Region("floor", top, size)]
    elif grounds:
        top = 0 if rng.random() < 0.5 else int(size * rng.uniform(0.25, 0.45))
        if top:
            regions.append(Region("wall", 0, top))
    else:
        top = int(size * rng.uniform(0.5, 0.75))
        return [Region("wall", 0, top), Region("floor", top, size)]
    weights = rng.uniform(0.7, 1.3, len(grounds))
    edges = np.round(top + np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum() * (size - top)).astype(int)
    regions.extend(Region(name, int(edges[i]), int(edges[i + 1])) for i, name in enumerate(grounds))
    return regions


def paint_background(regions: list[Region], settings: DemoWorldSettings, rng: np.random.Generator, bank: TextureBank) -> tuple[np.ndarray, np.ndarray]:
    """The background image (float32) and the full stuff map (before objects cover it)."""
    size = settings.image_size
    image = np.zeros((size, size, 3), dtype=np.float32)
    stuff = np.zeros((size, size), dtype=np.uint8)
    for region in regions:
        if region.kind == "sky":
            paint_sky(image, region.top, region.bottom, rng, bank)
        elif region.kind in ("wall", "floor"):
            paint_neutral(image, region.top, region.bottom, region.kind == "floor", rng)
        else:
            paint_ground(image, region.kind, region.top, region.bottom, rng, bank)
        if region.kind in settings.stuff_classes:
            stuff[region.top : region.bottom] = settings.stuff_classes.index(region.kind) + 1
    return image, stuff


def _anchor(name: str, home_stuff: str, regions: list[Region], size: int, rng: np.random.Generator) -> tuple[str, Region]:
    """Where an object goes: ("fly", rows it may occupy) or ("stand", the region its lowest pixel sits in)."""
    by_kind = {region.kind: region for region in regions}
    if name in FLYING:
        return "fly", by_kind.get("sky", Region("any", 0, size))
    home = by_kind.get(home_stuff)
    if home is not None:
        return "stand", home
    options = [region for region in regions if region.kind not in ("sky", "wall")]
    return "stand", options[int(rng.integers(len(options)))] if options else regions[-1]


def _fit_area(name: str, aspect: float, angle: float, area: float, max_w: float, max_h: float) -> float:
    width, height = rotated_extent(*box_size(name, aspect, area), angle)
    return area * min(1.0, (max_w / width) ** 2, (max_h / height) ** 2)


def _window(size: int, y0: int, x0: int, h: int, w: int) -> tuple[slice, slice, slice, slice] | None:
    """Image and sprite slices of a sprite placed at (y0, x0), or None when it misses the image."""
    iy0, ix0, iy1, ix1 = max(0, y0), max(0, x0), min(size, y0 + h), min(size, x0 + w)
    if iy0 >= iy1 or ix0 >= ix1:
        return None
    return slice(iy0, iy1), slice(ix0, ix1), slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0)


class _Composer:
    """Objects pasted one after another onto a background, with the owner map that tracks visibility."""

    def __init__(self, background: np.ndarray):
        self.size = background.shape[0]
        self.image = background.copy()
        self.owner = np.full((self.size, self.size), -1, dtype=np.int16)
        self.placed: list[_Placed] = []

    def visible(self) -> np.ndarray:
        return np.bincount(self.owner[self.owner >= 0].ravel(), minlength=len(self.placed))

    def score(self, sprite: Sprite, y0: int, x0: int) -> float:
        """Worst kept share over earlier objects and the new one's inside share; >= 1 means acceptable."""
        win = _window(self.size, y0, x0, *sprite.label.shape)
        if win is None:
            return 0.0
        iy, ix, sy, sx = win
        covered = sprite.label[sy, sx] > 0
        inside = int(covered.sum())
        worst = inside / max(1, sprite.area) / MIN_INSIDE
        if self.placed:
            lost = np.bincount(self.owner[iy, ix][covered & (self.owner[iy, ix] >= 0)], minlength=len(self.placed))
            kept = (self.visible() - lost) / np.array([max(1, p.inside_px) for p in self.placed])
            worst = min(worst, float(kept.min()) / MIN_KEPT)
        return worst

    def paste(self, name: str, sprite: Sprite, y0: int, x0: int) -> None:
        win = _window(self.size, y0, x0, *sprite.label.shape)
        inside = 0
        if win is not None:
            iy, ix, sy, sx = win
            alpha = sprite.alpha[sy, sx, None]
            self.image[iy, ix] = self.image[iy, ix] * (1 - alpha) + sprite.colour[sy, sx]
            hard = sprite.label[sy, sx] > 0
            self.owner[iy, ix][hard] = len(self.placed)
            inside = int(hard.sum())
        self.placed.append(_Placed(name, sprite, y0, x0, inside))


def _position(kind: str, region: Region, sprite: Sprite, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner for a sprite: standing with its lowest row in ``region``, or flying inside it."""
    h, w = sprite.label.shape
    cx = rng.uniform(0.3 * w, size - 0.3 * w) if 0.6 * w < size else size / 2 + rng.uniform(-0.1, 0.1) * w
    if kind == "stand":
        rows = region.bottom - region.top
        bottom = int(rng.integers(region.top + int(0.35 * rows), max(region.top + int(0.35 * rows) + 1, region.bottom)))
        return bottom - h + 1, int(round(cx - w / 2))
    span = region.bottom - region.top
    cy = rng.uniform(region.top + h / 2, region.bottom - h / 2) if h < span else region.top + span / 2
    return int(round(cy - h / 2)), int(round(cx - w / 2))


def _place_objects(
    plan: ImagePlan, regions: list[Region], background: np.ndarray, scale: float, rng: np.random.Generator, bank: TextureBank, settings: DemoWorldSettings
) -> _Composer:
    size = background.shape[0]
    names = list(plan.objects)
    areas = np.exp(rng.uniform(np.log(MIN_AREA), np.log(MAX_AREA), len(names))) * size * size * scale
    areas *= min(1.0, MAX_TOTAL_AREA * size * size / areas.sum())
    specs = []
    for name, area in zip(names, areas):
        kind, region = _anchor(name, settings.home_of(name), regions, size, rng)
        aspect, angle, flip = sample_aspect(rng, name), sample_angle(rng, name), bool(rng.random() < 0.5)
        max_h = 0.95 * max(region.bottom - region.top, 0.4 * size) if kind == "fly" else 0.9 * min(region.bottom, 0.85 * size)
        specs.append((kind, region, name, aspect, angle, flip, _fit_area(name, aspect, angle, area, size, max_h)))
    # Flying objects first (farther away), then ground objects from the back rows to the front.
    specs.sort(key=lambda s: (s[0] == "stand", s[1].bottom if s[0] == "stand" else 0))
    composer = _Composer(background)
    for kind, region, name, aspect, angle, flip, area in specs:
        best: tuple[float, Sprite, int, int] | None = None
        for _ in range(SHRINKS + 1):
            sprite = render_sprite(name, rng, bank, area, aspect, angle, flip)
            for _ in range(PLACEMENT_TRIES):
                y0, x0 = _position(kind, region, sprite, size, rng)
                score = composer.score(sprite, y0, x0)
                if best is None or score > best[0]:
                    best = (score, sprite, y0, x0)
                if score >= 1:
                    break
            if best[0] >= 1:
                break
            area *= 0.7
        composer.paste(name, best[1], best[2], best[3])
    return composer


def _stuff_kept(regions: list[Region], owner: np.ndarray, settings: DemoWorldSettings) -> bool:
    """Every stuff region keeps MIN_STUFF_KEPT of its pixels uncovered (so a planned stuff is really visible)."""
    free = owner < 0
    for region in regions:
        if region.kind in settings.stuff_classes:
            rows = slice(region.top, region.bottom)
            if free[rows].sum() < MIN_STUFF_KEPT * free[rows].size:
                return False
    return True


def ignore_band(owner: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour owned by something else: VOC's thin 'void' outline, 1 px, inside objects."""
    band = np.zeros(owner.shape, dtype=bool)
    for a, b in ((np.s_[1:, :], np.s_[:-1, :]), (np.s_[:, 1:], np.s_[:, :-1])):
        differ = owner[a] != owner[b]
        band[a] |= differ & (owner[a] >= 0)
        band[b] |= differ & (owner[b] >= 0)
    return band


def render_scene(plan: ImagePlan, settings: DemoWorldSettings, rng: np.random.Generator, bank: TextureBank) -> SceneResult:
    """Draw the image of ``plan`` with its class mask, stuff mask and visible instances."""
    size = settings.image_size
    regions = make_layout(plan, rng, size)
    background, stuff_full = paint_background(regions, settings, rng, bank)
    scale = 1.0
    for _ in range(LAYOUT_TRIES):
        composer = _place_objects(plan, regions, background, scale, rng, bank, settings)
        if _stuff_kept(regions, composer.owner, settings):
            break
        scale *= 0.7
    image = composer.image + crop(bank.noise, size, size, rng) * rng.uniform(1.5, 3.5)
    owner = composer.owner
    class_index = np.array([settings.classes.index(p.name) + 1 for p in composer.placed] + [0], dtype=np.uint8)
    class_mask = class_index[owner]  # owner -1 picks the trailing 0
    band = ignore_band(owner)
    counts = composer.visible()
    kept_inside = np.bincount(owner[(owner >= 0) & ~band].ravel(), minlength=len(composer.placed))
    for k in np.nonzero((counts > 0) & (kept_inside == 0))[0]:
        band[owner == k] = False  # never erase a whole instance: the mask and the XML must name the same classes
    class_mask[band] = IGNORE_INDEX
    stuff_mask = np.where(owner < 0, stuff_full, 0).astype(np.uint8)
    instances = []
    for k, placed in enumerate(composer.placed):
        if counts[k] == 0:
            continue
        rows, cols = np.nonzero(owner == k)
        instances.append(
            InstanceRecord(
                name=placed.name,
                bbox=(int(cols.min()) + 1, int(rows.min()) + 1, int(cols.max()) + 1, int(rows.max()) + 1),
                truncated=placed.inside_px < placed.sprite.area,
                occluded=int(counts[k]) < placed.inside_px,
                visible_px=int(counts[k]),
                full_px=placed.sprite.area,
                part_px=placed.sprite.part_area,
            )
        )
    return SceneResult(np.clip(image + 0.5, 0, 255).astype(np.uint8), class_mask, stuff_mask, instances)
