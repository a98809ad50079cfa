"""Stuff textures (sky, water, railroad, road, grass, sand) and neutral indoor backgrounds.

A few large tiles per stuff are drawn once per world (seeded) and cropped at random, so a scene costs a few array
slices instead of a texture synthesis. Colours stay clear of the objects' distinctive part colours (see ``looks``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from clims_core.data.demo_world.looks import BODY_LOOK_OF, body_looks_for
from clims_core.data.demo_world.settings import DemoWorldSettings

N_VARIANTS = 3  # tiles per stuff
SUPERSAMPLE = 2  # sprites are drawn at this factor; the feather tile lives at that resolution
TEXTURE_STREAM = 7_000_001  # SeedSequence key of the world's textures (image streams use split codes 1..3)


@dataclass(frozen=True)
class WorldStyle:
    """How a world of the family draws its things (the defaults draw the demo world)."""

    look_of: tuple[tuple[str, str], ...] = tuple(sorted(BODY_LOOK_OF.items()))  # family -> body look
    part_scale: float = 1.0  # multiplier of the distinctive part's area
    hue_shift: float = 0.0  # degrees the stuff colours turn about the grey axis
    brightness: float = 1.0  # multiplier of the stuff colours

    @property
    def body_look_of(self) -> dict[str, str]:
        return dict(self.look_of)


def style_of(settings: DemoWorldSettings) -> WorldStyle:
    looks = body_looks_for(settings.partners)
    return WorldStyle(tuple(sorted(looks.items())), float(settings.part_scale), float(settings.stuff_hue_shift), float(settings.stuff_brightness))


def shade_stuff(rgb: np.ndarray, style: WorldStyle) -> np.ndarray:
    """Stuff colours turned by ``style.hue_shift`` about the grey axis and scaled by ``style.brightness``.

    The default style returns ``rgb`` itself, untouched, so the demo world's bytes do not move.
    """
    if style.hue_shift == 0 and style.brightness == 1:
        return rgb
    a = np.radians(style.hue_shift)
    cross = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
    turn = np.cos(a) * np.eye(3) + (1 - np.cos(a)) / 3 * np.ones((3, 3)) + np.sin(a) / np.sqrt(3) * cross
    return np.clip(rgb @ (style.brightness * turn).T.astype(np.float32), 0, 255).astype(np.float32)


@dataclass(frozen=True)
class TextureBank:
    """The world's precomputed textures, float32 RGB in 0..255."""

    image_size: int
    tiles: dict[str, tuple[np.ndarray, ...]]  # ground stuff -> (T, T, 3) tiles
    clouds: tuple[np.ndarray, ...]  # (T, T) cloud opacity in 0..1
    noise: np.ndarray  # (T, T, 3) standard normal, for sensor noise
    feather: np.ndarray  # (F, F) multiplier of the brown feather body, at the sprite supersampling
    style: WorldStyle = WorldStyle()  # the world's looks, part scale and stuff palette


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Unit-variance noise varying over ``cell`` pixels (bicubic upsampling of a coarse grid)."""
    gh, gw = int(np.ceil(height / cell)) + 3, int(np.ceil(width / cell)) + 3
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    big = np.asarray(Image.fromarray(coarse, mode="F").resize((int(gw * cell), int(gh * cell)), Image.Resampling.BICUBIC))
    out = big[int(cell) : int(cell) + height, int(cell) : int(cell) + width]
    return (out - out.mean()) / (out.std() + 1e-6)


def crop(tile: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``height x width`` window of a tile (wrapping around when the tile is smaller)."""
    th, tw = tile.shape[:2]
    if height > th or width > tw:
        reps = (int(np.ceil(height / th)) + 1, int(np.ceil(width / tw)) + 1) + (1,) * (tile.ndim - 2)
        tile = np.tile(tile, reps)
        th, tw = tile.shape[:2]
    y = int(rng.integers(0, th - height + 1))
    x = int(rng.integers(0, tw - width + 1))
    return tile[y : y + height, x : x + width]


def _uniform_colour(rng: np.random.Generator, low: tuple[float, ...], high: tuple[float, ...]) -> np.ndarray:
    return rng.uniform(low, high).astype(np.float32)


def _water(rng: np.random.Generator, t: int, s: int) -> np.ndarray:
    """Blue with thin, broken, wavy lighter ripple lines."""
    y, x = np.mgrid[0:t, 0:t].astype(np.float32)
    base = _uniform_colour(rng, (26, 80, 148), (58, 116, 188))
    light = base + _uniform_colour(rng, (40, 40, 22), (52, 50, 32))
    period = max(4.0, s / 16)
    wave = 0.35 * np.sin(2 * np.pi * x / (s / 2.7) + rng.uniform(0, 2 * np.pi)) + 0.4 * smooth_noise(rng, t, t, s / 5)
    ripple = np.maximum(0.0, np.sin(2 * np.pi * (y / period + wave))) ** 10
    ripple *= np.clip(smooth_noise(rng, t, t, s / 10) + 0.4, 0, 1)
    shade = 1 + 0.06 * smooth_noise(rng, t, t, s / 3)
    return base * shade[..., None] + ripple[..., None] * (light - base)


def _railroad(rng: np.random.Generator, t: int, s: int) -> np.ndarray:
    """Gravel with dark brown sleepers and two steel rails per track (tracks repeat down the tile)."""
    base = _uniform_colour(rng, (118, 108, 92), (138, 124, 108))
    grain = rng.standard_normal((t, t)).astype(np.float32) * 14 + 4 * smooth_noise(rng, t, t, s / 12)
    out = base + grain[..., None] + rng.standard_normal((t, t, 3)).astype(np.float32) * 3
    period = max(12, round(0.22 * s))
    gap = max(5, round(0.09 * s))
    sleeper_w = max(2, round(0.3 * gap))
    rail_h = max(1, round(0.022 * s))
    y = np.arange(t)[:, None]
    x = np.arange(t)[None, :]
    phase_y = (y + int(rng.integers(period))) % period
    sleeper_rows = (phase_y >= 0.14 * period) & (phase_y < 0.86 * period)
    sleeper_cols = (x + int(rng.integers(gap))) % gap < sleeper_w
    sleeper = sleeper_rows & sleeper_cols
    wood = _uniform_colour(rng, (50, 36, 26), (62, 46, 34))
    out = np.where(sleeper[..., None], wood + 0.25 * grain[..., None], out)
    steel = _uniform_colour(rng, (162, 166, 176), (184, 188, 198))
    for centre in (0.3, 0.7):
        rail = np.abs(phase_y - centre * period) < rail_h / 2 + 0.01
        rail = np.broadcast_to(rail, (t, t))
        out = np.where(rail[..., None], steel + rng.standard_normal((t, t, 1)).astype(np.float32) * 4, out)
    return out


def _road(rng: np.random.Generator, t: int, s: int) -> np.ndarray:
    """Dark asphalt with a dashed white centre line per lane."""
    g = float(rng.uniform(52, 68))
    base = np.array([g, g, g + rng.uniform(0, 6)], dtype=np.float32)
    out = base + (rng.standard_normal((t, t)).astype(np.float32) * 7 + 4 * smooth_noise(rng, t, t, s / 6))[..., None]
    lane = max(12, round(0.28 * s))
    thick = max(1, round(0.022 * s))
    dash, space = max(3, round(0.14 * s)), max(2, round(0.1 * s))
    y = (np.arange(t)[:, None] + int(rng.integers(lane))) % lane
    x = (np.arange(t)[None, :] + int(rng.integers(dash + space))) % (dash + space)
    line = (np.abs(y - lane / 2) < thick / 2 + 0.01) & (x < dash)
    paint = _uniform_colour(rng, (222, 222, 212), (240, 240, 228))
    return np.where(line[..., None], paint, out)


def _grass(rng: np.random.Generator, t: int, s: int) -> np.ndarray:
    """Noisy greens with short blades."""
    dark = _uniform_colour(rng, (36, 96, 28), (52, 116, 40))
    light = _uniform_colour(rng, (84, 150, 46), (104, 170, 62))
    mix = np.clip(0.5 + 0.25 * smooth_noise(rng, t, t, s / 6), 0, 1)[..., None]
    out = dark + mix * (light - dark)
    out[..., 1] += rng.standard_normal((t, t)).astype(np.float32) * 9
    canvas = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    n_blades = t * t // 36
    starts = rng.uniform(0, t, (n_blades, 2))
    lengths = rng.uniform(0.025, 0.06, n_blades) * s
    angles = rng.uniform(-0.35, 0.35, n_blades)
    shades = rng.uniform(0.6, 1.35, n_blades)
    for (x0, y0), length, angle, shade in zip(starts, lengths, angles, shades):
        colour = tuple(int(min(255, c * shade)) for c in (dark + light) / 2)
        draw.line([(x0, y0), (x0 + length * np.sin(angle), y0 - length * np.cos(angle))], fill=colour, width=1)
    return np.asarray(canvas, dtype=np.float32)


def _feather(rng: np.random.Generator, size: int, cell: float) -> np.ndarray:
    """Rows of scallops (feather edges) as a brightness multiplier; the same tile serves bird and person bodies."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    row = np.floor(y / cell)
    u = (x + (row % 2) * cell / 2) % cell - cell / 2
    v = y % cell
    ring = np.abs(np.sqrt(u**2 + v**2) - cell * 0.55) < cell * 0.12
    pattern = np.where(ring, 0.74, 1.0).astype(np.float32)
    return pattern * (1 + 0.05 * smooth_noise(rng, size, size, cell * 3))


def _sand(rng: np.random.Generator, t: int, s: int) -> np.ndarray:
    """Greyish beige with fine grain and soft, slanted wind ripples (kept greyer and darker than the skin-pink part)."""
    y, x = np.mgrid[0:t, 0:t].astype(np.float32)
    base = _uniform_colour(rng, (140, 128, 100), (156, 142, 112))
    period = max(4.0, s / 11)
    slant = rng.uniform(-0.35, 0.35)
    bend = 0.6 * smooth_noise(rng, t, t, s / 4)
    ripple = np.sin(2 * np.pi * ((y + slant * x) / period + bend))
    shade = 1 + 0.04 * ripple + 0.03 * smooth_noise(rng, t, t, s / 2)
    grain = rng.standard_normal((t, t)).astype(np.float32) * 4
    return base * shade[..., None] + grain[..., None]


GROUND_TEXTURES = {"water": _water, "railroad": _railroad, "road": _road, "grass": _grass}
# Stuff added after the demo world: drawn from their own stream, so the demo world's tiles, clouds and noise keep
# their bytes.
EXTRA_TEXTURES = {"sand": _sand}
EXTRA_STREAM = TEXTURE_STREAM + 1


@functools.lru_cache(maxsize=4)
def build_bank(seed: int, image_size: int, style: WorldStyle = WorldStyle()) -> TextureBank:
    """The textures of world ``seed`` (deterministic; cached per process)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, TEXTURE_STREAM, image_size])))
    s, t = image_size, 2 * image_size
    tiles = {
        name: tuple(shade_stuff(np.clip(make(rng, t, s), 0, 255).astype(np.float32), style) for _ in range(N_VARIANTS))
        for name, make in GROUND_TEXTURES.items()
    }
    clouds = tuple(np.clip((smooth_noise(rng, t, t, s / 5) - 0.5) * 0.9, 0, 0.9).astype(np.float32) for _ in range(N_VARIANTS))
    noise = rng.standard_normal((t, t, 3)).astype(np.float32)
    cell = max(5.0, 0.045 * s * SUPERSAMPLE)
    feather = _feather(rng, 2 * SUPERSAMPLE * s + 32, cell)
    extra = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, EXTRA_STREAM, image_size])))
    for name, make in EXTRA_TEXTURES.items():
        tiles[name] = tuple(shade_stuff(np.clip(make(extra, t, s), 0, 255).astype(np.float32), style) for _ in range(N_VARIANTS))
    return TextureBank(image_size, tiles, clouds, noise, feather, style)


def world_bank(settings: DemoWorldSettings) -> TextureBank:
    """The texture bank of the world ``settings`` describe, with its style."""
    return build_bank(settings.seed, settings.image_size, style_of(settings))


def paint_sky(out: np.ndarray, top: int, bottom: int, rng: np.random.Generator, bank: TextureBank) -> None:
    """Light-blue vertical gradient (deeper at the top) with soft clouds, into rows ``top:bottom`` of ``out``."""
    h, w = bottom - top, out.shape[1]
    if h <= 0:
        return
    zenith = _uniform_colour(rng, (84, 144, 218), (124, 178, 248))
    horizon = _uniform_colour(rng, (164, 198, 236), (204, 226, 255))
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None] ** rng.uniform(0.7, 1.3)
    sky = zenith + ramp * (horizon - zenith)
    clouds = crop(bank.clouds[int(rng.integers(N_VARIANTS))], h, w, rng)[..., None] * rng.uniform(0.2, 1.0)
    cloud_colour = _uniform_colour(rng, (232, 234, 238), (248, 250, 255))
    out[top:bottom] = shade_stuff(sky * (1 - clouds) + cloud_colour * clouds, bank.style)


def paint_ground(out: np.ndarray, name: str, top: int, bottom: int, rng: np.random.Generator, bank: TextureBank) -> None:
    """A band of ground stuff ``name`` (water, railroad, road, grass, sand) into rows ``top:bottom``."""
    if bottom <= top:
        return
    tile = bank.tiles[name][int(rng.integers(N_VARIANTS))]
    out[top:bottom] = crop(tile, bottom - top, out.shape[1], rng) * rng.uniform(0.9, 1.1)


def stuff_patch(name: str, height: int, width: int, rng: np.random.Generator, bank: TextureBank) -> np.ndarray:
    """A ``height x width`` piece of stuff ``name`` (for isolated stuff photos)."""
    out = np.zeros((height, width, 3), dtype=np.float32)
    if name == "sky":
        paint_sky(out, 0, height, rng, bank)
    else:
        paint_ground(out, name, 0, height, rng, bank)
    return out


def paint_neutral(out: np.ndarray, top: int, bottom: int, floor: bool, rng: np.random.Generator) -> None:
    """Plain noisy grey or muted beige wall, or a darker grey floor: indoor background, stuff index 0."""
    if bottom <= top:
        return
    if floor:
        g = rng.uniform(92, 134)
        colour = np.array([g + rng.uniform(0, 7), g, g - rng.uniform(0, 7)], dtype=np.float32)
    elif rng.random() < 0.5:
        g = rng.uniform(148, 202)
        colour = np.array([g, g, g + rng.uniform(0, 8)], dtype=np.float32)
    else:
        g = rng.uniform(150, 184)
        colour = np.array([g + 8, g, g - 12], dtype=np.float32)
    ramp = np.linspace(1.04, 0.96, bottom - top, dtype=np.float32)[:, None, None]
    out[top:bottom] = colour * ramp
