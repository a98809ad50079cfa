"""IRNet's random walk: equal to IRNet's dense formulation, conserves (degree-weighted) mass, converges within regions,
and the mask it gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clims_core.refine.affinity import direction_path, search_directions
from clims_core.refine.random_walk import (background_plane, propagate, random_walk, transition_matrix,
                                           walk_to_mask)


def irnet_dense_propagation(cams, boundary, beta, exp_times, radius):
    """IRNet's propagate_to_edge written densely: T = A^beta / column sums, squared exp_times times, x @ T."""
    k, h, w = cams.shape
    n = h * w
    affinity = torch.eye(n, dtype=torch.float64)
    for y in range(h):
        for x in range(w):
            for dy, dx in search_directions(radius):
                ty, tx = y + dy, x + dx
                if 0 <= ty < h and 0 <= tx < w:
                    peak = max(boundary[y + py, x + px].item() for py, px in direction_path(dy, dx))
                    affinity[y * w + x, ty * w + tx] = affinity[ty * w + tx, y * w + x] = 1 - peak
    trans = affinity**beta
    trans = trans / trans.sum(dim=0, keepdim=True)
    for _ in range(exp_times):
        trans = trans @ trans
    return ((cams * (1 - boundary)).reshape(k, n).double() @ trans).reshape(k, h, w)


def test_sparse_walk_equals_irnets_dense_matrix_power():
    torch.manual_seed(0)
    boundary = torch.rand(9, 11) ** 3
    cams = torch.rand(2, 9, 11)
    expected = irnet_dense_propagation(cams, boundary, beta=10, exp_times=4, radius=5)
    assert torch.allclose(propagate(cams, boundary, beta=10, exp_times=4, radius=5).double(), expected, atol=1e-5)


def test_transition_rows_sum_to_one_and_degree_weighted_mass_is_conserved():
    torch.manual_seed(1)
    boundary = torch.rand(7, 8) ** 2
    matrix = transition_matrix(boundary, radius=4, beta=3.0)
    dense = matrix.to_dense().double()
    assert torch.allclose(dense.sum(dim=1), torch.ones(56, dtype=torch.float64), atol=1e-6)
    # M = D^-1 A with A symmetric: the degrees d weight a conserved sum, d^T M x = d^T x
    affinity = torch.diag(1 / dense.diagonal()) @ dense  # A = M / M_ii (the self-affinity is 1)
    degree = 1 / dense.diagonal()
    assert torch.allclose(affinity, affinity.T, atol=1e-6)
    x = torch.rand(3, 56)
    walked = random_walk(x, matrix, 50).double()
    assert torch.allclose(walked @ degree, x.double() @ degree, rtol=1e-4)
    assert torch.allclose(random_walk(torch.ones(1, 56), matrix, 20), torch.ones(1, 56), atol=1e-5)


def test_walk_spreads_within_a_region_and_stops_at_a_boundary():
    """A full boundary column splits the map: each side converges to its own degree-weighted mean, nothing crosses."""
    boundary = torch.zeros(6, 13)
    boundary[:, 6] = 1.0
    cams = torch.zeros(1, 6, 13)
    cams[0, 2, 1] = 1.0  # one hot pixel on the left
    walked = propagate(cams, boundary, beta=10, exp_times=10, radius=5)[0]
    assert torch.all(walked[:, 6:] == 0)
    left = walked[:, :6]
    assert left.min() > 0 and (left.max() - left.min()) / left.mean() < 1e-3  # flat: converged
    matrix = transition_matrix(boundary, radius=5, beta=10)
    degree = (1 / matrix.to_dense().diagonal()).view(6, 13)
    assert left.mean() == pytest.approx((degree[2, 1] / degree[:, :6].sum()).item(), rel=1e-3)


def test_walk_to_mask_normalises_by_the_global_maximum_and_thresholds():
    walked = torch.zeros(2, 2, 2)
    walked[0] = torch.tensor([[4.0, 1.0], [0.0, 0.0]])
    walked[1] = torch.tensor([[0.0, 2.0], [0.5, 0.0]])
    mask = walk_to_mask(walked, np.array([0, 3]), (7, 6), bg_thres=0.2, stride=4)
    assert mask.shape == (7, 6) and mask.dtype == np.uint8
    assert mask[0, 0] == 1 and mask[6, 5] == 0 and set(np.unique(mask).tolist()) <= {0, 1, 4}
    assert np.array_equal(walk_to_mask(torch.zeros(1, 2, 2), np.array([2]), (8, 8), 0.2), np.zeros((8, 8)))
    assert np.array_equal(walk_to_mask(torch.zeros(0, 2, 2), np.array([], dtype=int), (8, 8), 0.2),
                          np.zeros((8, 8)))


def test_a_walked_background_plane_outweighs_spill_into_a_large_region():
    """AffinityNet's rule: CAM spilling over a big empty region is averaged away there, the object keeps its class."""
    boundary = torch.zeros(8, 16)
    boundary[:, 4] = 1.0  # a closed boundary: the object is columns 0..3
    cams = torch.zeros(1, 8, 16)
    cams[0, :, :4] = 0.9
    cams[0, :, 5:11] = 0.5  # the blob spills across the boundary, over half of the region beyond it
    planes = torch.cat([background_plane(cams, 1.0), cams])
    assert torch.allclose(planes[0, 0, 0], torch.tensor(0.1)) and planes.shape == (2, 8, 16)
    walked = propagate(planes, boundary, beta=10, exp_times=8, radius=5)
    mask = walk_to_mask(walked, np.array([2]), (32, 64), bg_thres=None)
    assert (mask[:, :14] == 3).all() and (mask[:, 22:] == 0).all()
    walked_cams = propagate(cams, boundary, beta=10, exp_times=8, radius=5)
    thresholded = walk_to_mask(walked_cams, np.array([2]), (32, 64), 0.25)
    assert (thresholded[:, 22:] == 3).all()  # IRNet's threshold keeps the spill: flat at 0.3 of the maximum there
    assert np.array_equal(walk_to_mask(torch.ones(1, 2, 2), np.array([], dtype=int), (8, 8), None), np.zeros((8, 8)))
