"""IRNet's random walk: CAMs propagated over a transition matrix built from predicted class boundaries.

The affinity of two pixels within ``radius`` is ``1 - max(boundary on the path between them)`` (:mod:`.affinity`),
raised to ``beta``; each pixel's row is divided by its sum (its degree), giving the transition matrix ``M``; the CAMs,
first multiplied by ``1 - boundary``, are propagated ``2**exp_times`` steps: ``x <- M x``. Each step replaces a
pixel's score by the affinity-weighted mean of its neighbours', so scores spread within regions and stop at
boundaries; the degree-weighted sum of a score map is conserved.

IRNet builds the dense N x N matrix and squares it ``exp_times`` times (``x @ T^(2^exp_times)``, with ``T = M^T``).
That is exact but costs O(N^3) per squaring: a VOC image at stride 4 has N = 11,750 pixels. We apply the sparse
matrix (69 entries per row at radius 5) ``2**exp_times`` times instead, the same product in a different order:
``M^256 x`` computed as 256 sparse products, O(256 * 69 * N * K).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from clims_core.refine.affinity import PairIndex
from clims_core.refine.labels import key_lookup


@functools.lru_cache(maxsize=16)
def _layout(height: int, width: int, radius: int) -> tuple[torch.Tensor, ...]:
    """What the transition matrix of one map size needs beyond the weights (cached: it depends on the geometry only).

    Every row lists the pixel's pairs (p, p + d), its reverse pairs (p, p - d) and itself, in one fixed order (offsets
    ``dy * w + dx`` ascending), so each row's columns come out sorted without a sort. Returns the scatter positions of
    the reverse weights, the neighbour order, the valid-entry mask (n, 2D + 1), and the CSR columns and row pointers
    (int32, half the index traffic of int64 in each product).
    """
    index = PairIndex.build(height, width, radius)
    n, d = height * width, len(index.directions)
    scatter = (torch.arange(d)[:, None] * n + index.dst_map)[index.inside]
    shifts = torch.tensor(index.directions + tuple((-dy, -dx) for dy, dx in index.directions) + ((0, 0),))
    order = torch.argsort(shifts[:, 0] * width + shifts[:, 1])
    shifts = shifts[order]
    ys = torch.arange(height)[:, None, None] + shifts[:, 0]
    xs = torch.arange(width)[None, :, None] + shifts[:, 1]
    valid = ((ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)).reshape(n, -1)
    cols = (ys * width + xs).reshape(n, -1)[valid].to(torch.int32)
    crow = torch.zeros(n + 1, dtype=torch.int32)
    crow[1:] = torch.cumsum(valid.sum(dim=1), 0)
    return scatter, order, valid, cols, crow


def transition_matrix(boundary: torch.Tensor, radius: int = 5, beta: float = 10.0) -> torch.Tensor:
    """Sparse CSR ``M = D^-1 A^beta`` (N x N, N = h * w) of one (h, w) boundary map in [0, 1]."""
    height, width = boundary.shape
    index = PairIndex.build(height, width, radius)
    device = boundary.device
    scatter, order, valid, cols, crow = (t.to(device) for t in _layout(height, width, radius))
    n, d = height * width, len(index.directions)
    inside = index.inside.to(device)
    affinity = (index.affinity(boundary[None].float())[0].clamp_min(0) ** beta) * inside  # (D, n): pair (p, p + d)
    reverse = torch.zeros(d, n, device=device)
    reverse.view(-1)[scatter] = affinity[inside]  # pair (p - d, p), stored at p
    weights = torch.cat([affinity, reverse, torch.ones(1, n, device=device)])[order].T.contiguous()  # (n, 2D + 1)
    weights = weights / weights.sum(dim=1, keepdim=True)  # neighbours outside the map weigh 0 already
    with warnings.catch_warnings():  # torch calls its sparse CSR support "beta"; the product used here is stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols, weights[valid], size=(n, n), check_invariants=False)


def random_walk(scores: torch.Tensor, transition: torch.Tensor, steps: int) -> torch.Tensor:
    """``M^steps x`` for score maps ``x`` given as (K, N): each step one sparse product."""
    x = scores.T.contiguous()  # (N, K): the CSR product runs over rows
    for _ in range(steps):
        x = transition @ x
    return x.T


def propagate(cams: torch.Tensor, boundary: torch.Tensor, beta: float = 10.0, exp_times: int = 8,
              radius: int = 5) -> torch.Tensor:
    """IRNet's ``propagate_to_edge``: (K, h, w) CAMs and an (h, w) boundary map -> (K, h, w) propagated scores."""
    k, height, width = cams.shape
    if boundary.shape != (height, width):
        raise ValueError(f"boundary map {tuple(boundary.shape)} does not match the CAMs' {(height, width)}")
    if k == 0:
        return cams.clone()
    transition = transition_matrix(boundary, radius, beta)
    start = (cams * (1 - boundary)).reshape(k, -1)
    return random_walk(start, transition, 2**exp_times).reshape(k, height, width)


def background_plane(cams: torch.Tensor, alpha: float) -> torch.Tensor:
    """AffinityNet's background score ``(1 - max_k cam_k)^alpha`` (1, h, w), walked with the classes' maps."""
    if cams.shape[0] == 0:
        return torch.ones(1, *cams.shape[1:], dtype=cams.dtype, device=cams.device)
    return (1 - cams.amax(dim=0, keepdim=True)).clamp_min(0) ** alpha


def walk_to_mask(walked: torch.Tensor, keys: np.ndarray, size: tuple[int, int], bg_thres: float | None,
                 stride: int = 4) -> np.ndarray:
    """IRNet's ``make_sem_seg_labels`` tail: upsample x ``stride``, crop to the image, divide by the maximum over all
    classes, a background plane at ``bg_thres``, argmax, mask values (0 background, ``keys + 1``) as uint8.

    With ``bg_thres=None`` the walked maps start with a walked background plane (:func:`background_plane`): argmax
    over [background, classes] as they are (AffinityNet's rule).
    """
    height, width = size
    lookup = key_lookup(keys)
    if walked.shape[0] == 0:
        return np.zeros(size, dtype=np.uint8)
    up = F.interpolate(walked[None].float(), scale_factor=stride, mode="bilinear", align_corners=False)[0]
    up = up[:, :height, :width]
    if bg_thres is None:
        if up.shape[0] != len(lookup):
            raise ValueError(f"{up.shape[0]} walked planes for a background and {len(keys)} classes")
        return lookup[up.max(dim=0).indices.cpu().numpy()]  # = argmax(0), first on ties; 5x faster on CPU
    peak = up.max()
    if not peak > 0:  # nothing activated anywhere: all background (IRNet would divide by zero)
        return np.zeros(size, dtype=np.uint8)
    planes = torch.cat([torch.full((1, height, width), bg_thres, device=up.device), up / peak])
    return lookup[planes.max(dim=0).indices.cpu().numpy()]
