"""Object sprite families: silhouettes of the six classes, each a distinctive part attached to a shared-look body.

A family draws in a unit frame (x in [0, 1] across the object, y downwards in [0, 1/aspect]) with PIL polygons on a
supersampled canvas, paired with a label canvas (1 = body, 2 = part). The sprite is then flipped, rotated and box-filtered
down, giving premultiplied colour, coverage (soft edges) and a hard label where coverage >= 0.5. Silhouettes differ
only mildly between partner classes; the body's colour and texture (``looks``) are what partners share.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from clims_core.data.demo_world.looks import BodyLook, sample_body_look, sample_part_colour
from clims_core.data.demo_world.stuff import SUPERSAMPLE, TextureBank, crop

BODY, PART = 1, 2
Colour = tuple[int, int, int]

ASPECT = {"train": (2.9, 3.6), "car": (1.9, 2.3), "boat": (1.05, 1.3), "aeroplane": (2.2, 2.7), "bird": (1.3, 1.6), "person": (0.38, 0.46)}
# Mean share of the unrotated bounding box a family covers (measured), to size sprites to a target area.
FILL = {"train": 0.90, "car": 0.62, "boat": 0.56, "aeroplane": 0.45, "bird": 0.47, "person": 0.64}
MAX_ANGLE = {"aeroplane": 35.0, "bird": 30.0}  # flying families; ground families tilt at most GROUND_ANGLE
GROUND_ANGLE = 12.0


@dataclass(frozen=True)
class Sprite:
    """One rendered object instance, cropped to its extent."""

    colour: np.ndarray  # (h, w, 3) float32, premultiplied by alpha
    alpha: np.ndarray  # (h, w) float32 coverage in 0..1
    label: np.ndarray  # (h, w) uint8: 0 outside, BODY, PART (where coverage >= 0.5)

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.label))

    @property
    def part_area(self) -> int:
        return int(np.count_nonzero(self.label == PART))


class _Canvas:
    """Paired colour and label canvases addressed in unit-frame coordinates."""

    def __init__(self, width_px: float, aspect: float, ss: int):
        self.h = 1.0 / aspect
        self.scale = width_px * ss
        self.pad = 2 * ss
        self.px = 1.0 / width_px  # one output pixel in unit-frame lengths
        size = (int(math.ceil(self.scale)) + 2 * self.pad, int(math.ceil(self.scale * self.h)) + 2 * self.pad)
        self.label = Image.new("L", size, 0)
        self.rgb = Image.new("RGB", size, (0, 0, 0))
        self._label = ImageDraw.Draw(self.label)
        self._rgb = ImageDraw.Draw(self.rgb)

    def _points(self, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(self.pad + x * self.scale, self.pad + y * self.scale) for x, y in points]

    def polygon(self, points: list[tuple[float, float]], label: int, colour: Colour) -> None:
        pts = self._points(points)
        self._label.polygon(pts, fill=label)
        self._rgb.polygon(pts, fill=colour)

    def rect(self, x0: float, y0: float, x1: float, y1: float, label: int, colour: Colour) -> None:
        self.polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], label, colour)

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, label: int, colour: Colour) -> None:
        box = self._points([(x0, y0), (x1, y1)])
        self._label.ellipse(box, fill=label)
        self._rgb.ellipse(box, fill=colour)

    def paint(self, points: list[tuple[float, float]], colour: Colour) -> None:
        """Colour only: a decoration inside an already-labelled region (windows, stripes)."""
        self._rgb.polygon(self._points(points), fill=colour)

    def paint_rect(self, x0: float, y0: float, x1: float, y1: float, colour: Colour) -> None:
        self.paint([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], colour)


# -- shared body decorations: identical code for both classes of a partner pair ---------------------------------------


def _window_row(c: _Canvas, x0: float, x1: float, top: float, bottom: float, look: BodyLook) -> None:
    """A row of dark windows in the upper half of a grey body panel (train carriages, car body)."""
    bh = bottom - top
    wy0, wy1 = top + 0.16 * bh, top + 0.5 * bh
    ww, gap = 0.3 * bh, 0.2 * bh
    n = max(1, int((x1 - x0 - gap) / (ww + gap)))
    start = x0 + (x1 - x0 - n * ww - (n - 1) * gap) / 2
    for k in range(n):
        c.paint_rect(start + k * (ww + gap), wy0, start + k * (ww + gap) + ww, wy1, look.accent)


def _wheels(c: _Canvas, xs: list[float], y: float, r: float, look: BodyLook) -> None:
    for x in xs:
        c.ellipse(x - r, y - r, x + r, y + r, BODY, look.wheel)


def _stripe(c: _Canvas, left: Callable[[float], float], right: Callable[[float], float], y0: float, y1: float, look: BodyLook) -> None:
    """The navy stripe of the white look, between ``y0`` and ``y1`` and inside the outline given by left(y), right(y)."""
    c.paint([(left(y0), y0), (right(y0), y0), (right(y1), y1), (left(y1), y1)], look.accent)


def _toward(points: list[tuple[float, float]], anchor: tuple[float, float], t: float) -> list[tuple[float, float]]:
    """``points`` moved the share ``t`` of the way to ``anchor`` (a shrink about it; exactly unchanged at t = 0)."""
    return [(x + (anchor[0] - x) * t, y + (anchor[1] - y) * t) for x, y in points]


# -- families ---------------------------------------------------------------------------------------------------------
# Each family takes ``part_scale``, the multiplier of its distinctive part's area (1 = the demo world). A part shrinks
# about where it joins the body, so the object stays one piece; written so that part_scale 1 computes exactly what the
# demo world always drew.


def _train(c: _Canvas, rng: np.random.Generator, part: Colour, look: BodyLook, part_scale: float = 1.0) -> None:
    """Red engine cab at the front, then one or two grey carriages with window rows, on dark wheels."""
    h = c.h
    top, bottom = 0.04 * h, 0.84 * h
    cab = rng.uniform(0.23, 0.29) * part_scale  # the cab's width: the carriages take what it leaves
    n_cars = 1 + int(rng.random() < 0.5)
    edges = np.linspace(cab, 1.0, n_cars + 1)
    for k in range(n_cars):
        x0 = edges[k] + (0.012 if k else 0.0)
        c.rect(x0, top, edges[k + 1], bottom, BODY, look.base)
        _window_row(c, x0 + 0.01, edges[k + 1] - 0.01, top, bottom, look)
        if k:
            c.rect(edges[k] - 0.01, 0.5 * h, edges[k] + 0.02, 0.66 * h, BODY, look.wheel)
    nose = rng.uniform(0.05, 0.09) * min(1.0, part_scale)
    c.polygon([(0, bottom), (0, 0.42 * h), (nose, top), (cab + 0.005, top), (cab + 0.005, bottom)], PART, part)
    dark = tuple(int(v * 0.82) for v in part)
    c.paint_rect(nose + 0.02, top + 0.12 * h, cab - 0.03, top + 0.36 * h, dark)  # windscreen, a darker red
    r = 0.11 * h
    _wheels(c, list(np.arange(0.07, 0.97, max(0.1, 2.6 * r))), bottom, r, look)


def _car(c: _Canvas, rng: np.random.Generator, part: Colour, look: BodyLook, part_scale: float = 1.0) -> None:
    """Grey body with a window row under a turquoise cabin, two dark wheels."""
    h = c.h
    cab_top, body_top, bottom = rng.uniform(0.08, 0.14) * h, 0.42 * h, 0.84 * h
    a, b = rng.uniform(0.19, 0.25), rng.uniform(0.29, 0.35)
    cabin = [(a, body_top + 0.02 * h), (b, cab_top), (1 - b, cab_top), (1 - a, body_top + 0.02 * h)]
    c.polygon(_toward(cabin, (0.5, body_top + 0.02 * h), 1 - math.sqrt(part_scale)), PART, part)
    c.polygon([(0, body_top + 0.1 * h), (0.05, body_top), (0.95, body_top), (1, body_top + 0.1 * h), (1, bottom), (0, bottom)], BODY, look.base)
    _window_row(c, 0.05, 0.95, body_top, bottom, look)
    r = 0.15 * h
    _wheels(c, [0.2, 0.8], bottom, r, look)


def _boat(c: _Canvas, rng: np.random.Generator, part: Colour, look: BodyLook, part_scale: float = 1.0) -> None:
    """White hull with a navy stripe and a deck cabin; orange sail, jib and flag on the mast."""
    h = c.h
    deck, keel = 0.56 * h, 0.97 * h
    mast = rng.uniform(0.3, 0.4)
    mw = max(0.02, 1.2 * c.px)
    sail = rng.uniform(0.36, 0.44)
    t = 1 - math.sqrt(part_scale)
    foot = (mast + mw / 2, deck + 0.01 * h)  # sail and jib shrink towards the mast's foot, the flag towards its top
    c.polygon(_toward([(mast + mw, 0.05 * h), (mast + mw, deck + 0.01 * h), (mast + mw + sail, deck + 0.01 * h)], foot, t), PART, part)
    c.polygon(_toward([(mast, 0.14 * h), (mast, deck + 0.01 * h), (mast - rng.uniform(0.14, 0.2), deck + 0.01 * h)], foot, t), PART, part)
    c.polygon(_toward([(mast + mw, 0.0), (mast + mw + 0.12, 0.0), (mast + mw + 0.12, 0.07 * h), (mast + mw, 0.07 * h)], (mast + mw, 0.0), t), PART, part)
    c.rect(mast, 0.0, mast + mw, deck, BODY, look.base)
    c.rect(0.58, deck - 0.13 * h, 0.82, deck + 0.01 * h, BODY, look.base)
    bow = rng.uniform(0.1, 0.18)

    def left(y: float) -> float:
        return 0.6 * bow * (y - deck) / (keel - deck)

    def right(y: float) -> float:
        return 1 - bow * (y - deck) / (keel - deck)

    c.polygon([(0, deck), (1, deck), (1 - bow, keel), (0.6 * bow, keel)], BODY, look.base)
    _stripe(c, left, right, deck + 0.14 * h, deck + 0.22 * h, look)


def _aeroplane(c: _Canvas, rng: np.random.Generator, part: Colour, look: BodyLook, part_scale: float = 1.0) -> None:
    """White fuselage with a navy stripe and a swept wing; magenta tail fin, stabiliser and engine pod."""
    h = c.h
    f0, f1 = 0.42 * h, 0.74 * h
    fh = f1 - f0
    fin = rng.uniform(0.22, 0.27)
    t = 1 - math.sqrt(part_scale)
    tail = [(0.98 - fin, f0 + 0.06 * h), (0.97, f0 + 0.06 * h), (1.0, 0.0), (0.99 - 0.45 * fin, 0.0)]
    c.polygon(_toward(tail, (0.975 - fin / 2, f0 + 0.06 * h), t), PART, part)
    c.ellipse(0.0, f0, 0.18, f1, BODY, look.base)
    c.polygon([(0.09, f0), (0.9, f0), (1.0, f0 + 0.02 * h), (1.0, f0 + 0.5 * fh), (0.9, f1), (0.09, f1)], BODY, look.base)
    _stripe(c, lambda y: 0.05, lambda y: 0.93, f0 + 0.42 * fh, f0 + 0.58 * fh, look)
    stabiliser = [(0.8, f0 + 0.3 * fh), (0.97, f0 + 0.3 * fh), (1.0, f0 + 0.5 * fh), (0.84, f0 + 0.5 * fh)]
    c.polygon(_toward(stabiliser, (0.9, f0 + 0.4 * fh), t), PART, part)
    w0 = rng.uniform(0.34, 0.4)
    c.polygon([(w0, f0 + 0.55 * fh), (w0 + 0.2, f0 + 0.55 * fh), (w0 + 0.3, 0.99 * h), (w0 + 0.18, 0.99 * h)], BODY, look.base)
    dx, dy = 0.075 * t, 0.13 * h * t  # the pod hangs from the wing: it shrinks towards its top
    c.ellipse(w0 + 0.02 + dx, 0.8 * h, w0 + 0.17 - dx, 0.93 * h - dy, PART, part)


def _bird(c: _Canvas, rng: np.random.Generator, part: Colour, look: BodyLook, part_scale: float = 1.0) -> None:
    """Brown feathered body, tail and wing; yellow head and beak."""
    h = c.h
    c.polygon([(0.0, 0.42 * h), (0.24, 0.54 * h), (0.24, 0.68 * h), (0.0, 0.8 * h)], BODY, look.base)
    c.ellipse(0.12, 0.36 * h, 0.8, 0.9 * h, BODY, look.base)
    full_r = rng.uniform(0.14, 0.16)
    head_r = full_r * math.sqrt(part_scale)
    sink = full_r - head_r  # a smaller head moves down and back onto the body, so it stays attached
    cx, cy = 0.82 - full_r * 0.3 - sink, 0.36 * h + sink
    c.ellipse(cx - head_r, cy - head_r, cx + head_r, cy + head_r, PART, part)
    c.polygon([(cx + 0.7 * head_r, cy - 0.45 * head_r), (1.0, cy + 0.1 * head_r), (cx + 0.7 * head_r, cy + 0.55 * head_r)], PART, part)
    if rng.random() < 0.5:  # wing up
        c.polygon([(0.28, 0.58 * h), (0.62, 0.58 * h), (0.46, 0.0)], BODY, look.base)
    else:  # wing spread down-back
        c.polygon([(0.3, 0.55 * h), (0.64, 0.55 * h), (0.2, 0.98 * h)], BODY, look.base)


def _person(c: _Canvas, rng: np.random.Generator, part: Colour, look: BodyLook, part_scale: float = 1.0) -> None:
    """Brown coat (torso, arms, legs) with the feather texture; skin-pink head and hands."""
    h = c.h
    head_r = rng.uniform(0.29, 0.33)
    t = 1 - math.sqrt(part_scale)
    neck = 0.02 + 2 * head_r
    hip = neck + 0.38 * (h - neck)
    c.rect(0.24, hip - 0.02, 0.47, h * 0.985, BODY, look.base)
    c.rect(0.53, hip - 0.02, 0.76, h * 0.985, BODY, look.base)
    arm_end = neck + 0.33 * (h - neck)
    for x0 in (0.02, 0.82):
        c.rect(x0, neck + 0.05, x0 + 0.16, arm_end, BODY, look.base)
        d = 0.09 * t  # hands shrink about their centres, heads towards the neck
        c.ellipse(x0 - 0.01 + d, arm_end - 0.07 + d, x0 + 0.17 - d, arm_end + 0.11 - d, PART, part)
    c.rect(0.2, neck - 0.03, 0.8, hip, BODY, look.base)
    d = head_r * t
    c.ellipse(0.5 - head_r + d, 0.02 + 2 * d, 0.5 + head_r - d, 0.02 + 2 * head_r, PART, part)


FAMILIES: dict[str, Callable[[_Canvas, np.random.Generator, Colour, BodyLook, float], None]] = {
    "train": _train,
    "car": _car,
    "boat": _boat,
    "aeroplane": _aeroplane,
    "bird": _bird,
    "person": _person,
}


def sample_aspect(rng: np.random.Generator, name: str) -> float:
    low, high = ASPECT[name]
    return float(rng.uniform(low, high))


def sample_angle(rng: np.random.Generator, name: str) -> float:
    """Degrees: small tilts for ground objects, larger for flying ones."""
    limit = MAX_ANGLE.get(name, GROUND_ANGLE)
    return float(rng.uniform(-limit, limit))


def box_size(name: str, aspect: float, area_px: float) -> tuple[float, float]:
    """Unrotated width and height (output pixels) that give about ``area_px`` object pixels."""
    width = math.sqrt(area_px * aspect / FILL[name])
    return width, width / aspect


def rotated_extent(width: float, height: float, angle: float) -> tuple[float, float]:
    """Width and height of the bounding box of a ``width x height`` box rotated by ``angle`` degrees."""
    a = math.radians(angle)
    return abs(width * math.cos(a)) + abs(height * math.sin(a)), abs(width * math.sin(a)) + abs(height * math.cos(a))


def _downsample(label: np.ndarray, rgb: np.ndarray, ss: int) -> Sprite:
    h, w = -(-label.shape[0] // ss), -(-label.shape[1] // ss)
    pad = ((0, h * ss - label.shape[0]), (0, w * ss - label.shape[1]))
    label = np.pad(label, pad)
    rgb = np.pad(rgb, pad + ((0, 0),))
    inside = (label > 0).astype(np.float32)
    alpha = inside.reshape(h, ss, w, ss).mean(axis=(1, 3))
    colour = (rgb * inside[..., None]).reshape(h, ss, w, ss, 3).mean(axis=(1, 3))
    part = (label == PART).astype(np.float32).reshape(h, ss, w, ss).mean(axis=(1, 3))
    hard = np.where(alpha >= 0.5, np.where(2 * part >= alpha, PART, BODY), 0).astype(np.uint8)
    rows, cols = np.nonzero(alpha > 0)
    if rows.size == 0:
        return Sprite(np.zeros((1, 1, 3), np.float32), np.zeros((1, 1), np.float32), np.zeros((1, 1), np.uint8))
    ys, xs = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
    return Sprite(np.ascontiguousarray(colour[ys, xs]), np.ascontiguousarray(alpha[ys, xs]), np.ascontiguousarray(hard[ys, xs]))


def render_sprite(
    name: str,
    rng: np.random.Generator,
    bank: TextureBank,
    area_px: float,
    aspect: float,
    angle: float,
    flip: bool,
) -> Sprite:
    """Draw one instance of family ``name`` with random colours in the family's ranges (looks and part size from
    ``bank.style``)."""
    part = sample_part_colour(rng, name)
    look = sample_body_look(rng, name, bank.style.body_look_of)
    width, _ = box_size(name, aspect, area_px)
    canvas = _Canvas(width, aspect, SUPERSAMPLE)
    FAMILIES[name](canvas, rng, part, look, bank.style.part_scale)
    label = np.asarray(canvas.label)
    rgb = np.asarray(canvas.rgb, dtype=np.float32)
    height = label.shape[0]
    if look.name == "brown_feather":
        texture = crop(bank.feather, label.shape[0], label.shape[1], rng)
        rgb = rgb * np.where(label == BODY, texture, 1.0)[..., None]
    rgb = rgb * np.linspace(1.06, 0.94, height, dtype=np.float32)[:, None, None]  # light from above
    if flip:
        label, rgb = label[:, ::-1], rgb[:, ::-1]
    label_image = Image.fromarray(np.ascontiguousarray(label))
    rgb_image = Image.fromarray(np.ascontiguousarray(np.clip(rgb, 0, 255).astype(np.uint8)))
    if abs(angle) > 0.01:
        label_image = label_image.rotate(angle, resample=Image.Resampling.NEAREST, expand=True)
        rgb_image = rgb_image.rotate(angle, resample=Image.Resampling.NEAREST, expand=True)
    return _downsample(np.asarray(label_image), np.asarray(rgb_image, dtype=np.float32), SUPERSAMPLE)
