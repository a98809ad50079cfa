"""IRNet's pairs: directions, paths, affinity from a boundary map and affinity labels, on hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from clims_core.refine.affinity import PairIndex, direction_path, search_directions


def pairs_by_kind(index: PairIndex, masks: tuple[torch.Tensor, ...]) -> dict[str, set]:
    """{kind: {((y, x), (y2, x2))}} from (1, D, n) masks."""
    out: dict[str, set] = {}
    for kind, mask in zip(("bg_pos", "fg_pos", "neg"), masks):
        found = set()
        for d, (dy, dx) in enumerate(index.directions):
            for p in torch.nonzero(mask[0, d]).flatten().tolist():
                y, x = divmod(p, index.width)
                found.add(((y, x), (y + dy, x + dx)))
        out[kind] = found
    return out


def test_search_directions_are_irnets_half_plane():
    directions = search_directions(5)
    assert len(directions) == 34 and len(set(directions)) == 34
    assert all(dy > 0 or (dy == 0 and dx > 0) for dy, dx in directions)
    assert all(dy * dy + dx * dx < 25 for dy, dx in directions)
    assert (4, 2) in directions and (4, 3) not in directions and (0, 5) not in directions
    assert len(search_directions(10)) == 152
    with pytest.raises(ValueError, match="radius"):
        search_directions(1)


def test_paths_include_both_ends_and_the_points_near_the_segment():
    assert direction_path(0, 3) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert sorted(direction_path(1, 1)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert sorted(direction_path(1, -1)) == [(0, -1), (0, 0), (1, -1), (1, 0)]
    # (2, 4): within distance 1 of the segment means |x - 2y| <= 2, so the box's far corners are left out
    assert sorted(direction_path(2, 4)) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (2, 2),
                                            (2, 3), (2, 4)]


def test_affinity_labels_hand_computed():
    labels = torch.tensor([[[1, 1, 0], [255, 0, 0], [2, 2, 0]]])
    index = PairIndex.build(3, 3, 2)
    assert index.directions == ((0, 1), (1, 0), (1, -1), (1, 1))
    found = pairs_by_kind(index, index.labels(labels))
    assert found["fg_pos"] == {((0, 0), (0, 1)), ((2, 0), (2, 1))}
    assert found["bg_pos"] == {((1, 1), (1, 2)), ((0, 2), (1, 2)), ((1, 2), (2, 2)), ((0, 2), (1, 1)),
                               ((1, 1), (2, 2))}
    assert found["neg"] == {((0, 1), (0, 2)), ((2, 1), (2, 2)), ((0, 1), (1, 1)), ((1, 1), (2, 1)),
                            ((1, 1), (2, 0)), ((1, 2), (2, 1)), ((0, 0), (1, 1)), ((0, 1), (1, 2))}


def test_affinity_is_one_minus_the_path_maximum():
    boundary = torch.zeros(1, 3, 4)
    boundary[0, :, 1] = 0.5  # a half-strength boundary down column 1
    boundary[0, 2, 3] = 0.25
    index = PairIndex.build(3, 4, 3)
    affinity = index.affinity(boundary)[0]

    def value(p, d):
        return affinity[index.directions.index(d), p[0] * 4 + p[1]].item()

    assert value((0, 0), (0, 2)) == pytest.approx(0.5)  # crosses column 1 between its ends
    assert value((0, 2), (0, 1)) == pytest.approx(1.0)  # entirely right of the boundary
    assert value((0, 2), (1, 0)) == pytest.approx(1.0)
    assert value((1, 2), (1, 1)) == pytest.approx(0.75)  # ends on the weaker boundary pixel (2, 3)
    assert value((0, 0), (1, 0)) == pytest.approx(1.0)
    assert value((0, 3), (0, 1)) == pytest.approx(0.0)  # reaches beyond the map: padding is boundary 1


def test_every_pixel_is_a_source_and_neighbours_outside_are_marked():
    index = PairIndex.build(4, 5, 3)
    assert index.inside.shape == index.dst_map.shape == (len(index.directions), 20)
    assert index.planes(torch.zeros(1, 4, 5), 1.0).shape == (1, 3 * 5, 20)
    inside = index.inside
    right = index.directions.index((0, 1))
    assert inside[right].view(4, 5)[:, -1].sum() == 0 and inside[right].view(4, 5)[:, :-1].all()
    targets = index.dst_map[right][inside[right]]
    ys, xs = targets // 5, targets % 5
    assert (ys < 4).all() and (xs < 5).all()


def test_affinity_gradient_reaches_each_paths_maximum():
    """The lean backward equals autograd's through a plain max over the path (no ties)."""
    torch.manual_seed(0)
    boundary = torch.rand(2, 6, 7, requires_grad=True)
    index = PairIndex.build(6, 7, 4)
    weights = torch.rand(2, len(index.directions), 42)
    (index.affinity(boundary) * weights).sum().backward()
    reference = boundary.detach().clone().requires_grad_(True)
    planes = index.planes(reference, 1.0)
    plain = torch.cat([1 - planes[:, group.reshape(-1)].view(2, *group.shape, 42).amax(dim=2)
                       for group in index.paths], dim=1)
    assert torch.allclose(plain, index.affinity(boundary))
    (plain * weights).sum().backward()
    assert torch.allclose(boundary.grad, reference.grad, atol=1e-6)
