"""IRNet's inter-pixel pairs: every pixel and its neighbours within a radius, the path between them, and from that the
affinity of a class-boundary map and the affinity labels of an IR label map.

A pair (p, p + d) uses the directions ``d`` of one half-plane (dy > 0, or dy = 0 and dx > 0) with ``|d| < radius``,
so each unordered pair appears once. Its *path* is every lattice point within distance 1 of the segment from p to
p + d, both ends included (IRNet's ``PathIndex``); the affinity is ``1 - max(boundary over the path)``: two pixels are
related unless a boundary lies between them.

Unlike IRNet, the map is padded (right, left and bottom by ``radius - 1``) so that *every* pixel is a source: IRNet's
training crops the sources to the region whose neighbours all fall inside, which at the demo's 32 x 32 maps would drop
most of them. Pairs that reach into the padding are never used: their label is 255 (not valid) and their boundary 1
(affinity 0), exactly as IRNet pads the boundary map with 1 for the random walk.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from clims_core.io.masks import IGNORE_INDEX


def search_directions(radius: int) -> list[tuple[int, int]]:
    """IRNet's half-plane neighbour offsets ``(dy, dx)`` with ``dy**2 + dx**2 < radius**2`` (34 for radius 5)."""
    if radius < 2:
        raise ValueError(f"affinity radius: expected an integer >= 2, got {radius}")
    directions = [(0, dx) for dx in range(1, radius)]
    directions += [(dy, dx) for dy in range(1, radius) for dx in range(-radius + 1, radius)
                   if dx * dx + dy * dy < radius * radius]
    return directions


def direction_path(dy: int, dx: int) -> list[tuple[int, int]]:
    """Lattice points within distance 1 of the segment (0, 0) -> (dy, dx), both ends included (IRNet's rule)."""
    length_sq = dy * dy + dx * dx
    ys = range(min(0, dy), max(0, dy) + 1)
    xs = range(min(0, dx), max(0, dx) + 1)
    return [(y, x) for y in ys for x in xs if (dy * x - dx * y) ** 2 / length_sq < 1]


@dataclass(frozen=True)
class PairIndex:
    """Every (pixel, neighbour) pair of an ``height x width`` map, addressed through the map's shifted copies.

    The map, padded by ``pad = radius - 1`` (right, left, bottom), is unfolded into its ``(pad + 1) x (2 pad + 1)``
    shifted copies (*planes*, one per offset ``(py, px)``, ``py`` in 0..pad, ``px`` in -pad..pad; plane
    ``py * (2 pad + 1) + px + pad``), each an (h * w) vector over the map's pixels in row-major order. A direction's
    neighbour is one plane (``dst_planes``); its path a few (``paths``: one (D_g, L_g) tensor of planes per group of
    directions whose path has L_g points, so the max over a path is one reduction; groups in the order of
    ``directions``). Gathering whole planes keeps memory access contiguous in both passes, unlike gathering pixels.
    ``inside`` (D, n) marks pairs whose neighbour lies in the map, ``dst_map`` (D, n) its row-major index there.
    """

    height: int
    width: int
    radius: int
    directions: tuple[tuple[int, int], ...]
    dst_planes: torch.Tensor
    paths: tuple[torch.Tensor, ...]
    inside: torch.Tensor
    dst_map: torch.Tensor

    @property
    def pad(self) -> int:
        return self.radius - 1

    @staticmethod
    @functools.lru_cache(maxsize=16)
    def build(height: int, width: int, radius: int) -> "PairIndex":
        """The index of one map size (cached: training and inference reuse a few sizes)."""
        pad = radius - 1

        def plane(py: int, px: int) -> int:
            return py * (2 * pad + 1) + px + pad

        by_length: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for direction in search_directions(radius):
            by_length[len(direction_path(*direction))].append(direction)
        directions = [d for length in sorted(by_length) for d in by_length[length]]
        paths = tuple(torch.tensor([[plane(*point) for point in direction_path(*d)] for d in by_length[length]])
                      for length in sorted(by_length))
        ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        dy = np.array([d[0] for d in directions])[:, None]
        dx = np.array([d[1] for d in directions])[:, None]
        ty, tx = ys.reshape(1, -1) + dy, xs.reshape(1, -1) + dx
        inside = (ty < height) & (tx >= 0) & (tx < width)
        dst_map = np.where(inside, ty * width + tx, 0)
        return PairIndex(height, width, radius, tuple(directions), torch.tensor([plane(*d) for d in directions]),
                         paths, torch.from_numpy(inside), torch.from_numpy(dst_map))

    def src_map(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(1, n): each source's row-major index in the map (the sources are the map's pixels in order)."""
        return torch.arange(self.height * self.width, device=device)[None]

    def planes(self, maps: torch.Tensor, value: float) -> torch.Tensor:
        """(B, H, W) maps -> (B, planes, H * W) shifted copies, ``value`` beyond the map."""
        if maps.shape[-2:] != (self.height, self.width):
            raise ValueError(f"map of size {tuple(maps.shape[-2:])} for a pair index of {(self.height, self.width)}")
        padded = F.pad(maps[:, None], (self.pad, self.pad, 0, self.pad), value=value)
        return F.unfold(padded, kernel_size=(self.pad + 1, 2 * self.pad + 1))

    def affinity(self, boundary: torch.Tensor) -> torch.Tensor:
        """``1 - max(boundary on the path)`` of every pair: (B, H, W) boundary probabilities -> (B, D, n)."""
        return _PathAffinity.apply(self.planes(boundary, 1.0), self.paths)

    def labels(self, label_maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """IRNet's affinity labels of (B, H, W) IR label maps: (bg_pos, fg_pos, neg), each a (B, D, n) float mask.

        A pair counts only when both ends are labelled (not 255); it is positive when both carry the same label
        (background or foreground positive by that label) and negative when they differ.
        """
        planes = self.planes(label_maps.float(), float(IGNORE_INDEX))  # label values are exact in float32
        src = label_maps.flatten(1).float()[:, None, :]
        dst = planes.index_select(1, self.dst_planes.to(planes.device))
        valid = (src != IGNORE_INDEX) & (dst != IGNORE_INDEX)
        equal = (src == dst) & valid
        return ((equal & (src == 0)).float(), (equal & (src > 0)).float(), (valid & (src != dst)).float())


class _PathAffinity(torch.autograd.Function):
    """``1 - max`` over each pair's path planes, with a lean backward.

    Autograd through ``index_select`` + ``amax`` would keep and revisit every (pair, path point) value, ~14 per pair
    at radius 10; only the maximum's plane matters for the gradient, so the forward keeps that (one index per pair)
    and the backward scatters the pair gradients onto it: at radius 10 this halves a CPU training step.
    """

    @staticmethod
    def forward(ctx, planes: torch.Tensor, paths: tuple[torch.Tensor, ...]) -> torch.Tensor:  # type: ignore[override]
        batch, n_planes, n = planes.shape
        maxima, argplanes = [], []
        for group in paths:
            group = group.to(planes.device)
            best = planes.index_select(1, group[:, 0])
            argplane = group[:, 0].view(1, -1, 1).expand_as(best).clone()
            for step in range(1, group.shape[1]):  # running max over the path, streaming (B, D_g, n) slabs
                candidate = planes.index_select(1, group[:, step])
                higher = candidate > best
                best = torch.maximum(best, candidate)
                argplane = torch.where(higher, group[:, step].view(1, -1, 1), argplane)
            maxima.append(best)
            argplanes.append(argplane)
        ctx.save_for_backward(torch.cat(argplanes, dim=1))
        ctx.n_planes = n_planes
        return 1 - torch.cat(maxima, dim=1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (argplanes,) = ctx.saved_tensors
        batch, _, n = grad.shape
        grad_planes = grad.new_zeros(batch, ctx.n_planes, n).scatter_add_(1, argplanes, -grad)
        return grad_planes, None
