"""WiSE-FT's blend: alpha 1 keeps the fine-tuned weights, 0 restores the start, between is the straight line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clims_core.training.weight_interpolation import interpolate_, snapshot


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def _moved(net: nn.Module) -> None:
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(1.0)
    net.train()(torch.randn(8, 3))  # BatchNorm: running stats and the integer counter move


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_every_float_tensor_lies_on_the_line_between_start_and_fine_tuned(alpha):
    net = _net()
    start = snapshot(net)
    _moved(net)
    tuned = {k: v.clone() for k, v in net.state_dict().items()}
    interpolate_(net, start, alpha)
    after = net.state_dict()
    for name, value in after.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (1 - alpha) * start[name] + alpha * tuned[name])
        else:
            assert torch.equal(value, tuned[name]), name  # num_batches_tracked keeps the fine-tuned count
    assert "1.num_batches_tracked" not in start


def test_snapshot_is_a_copy_and_bad_input_is_named():
    net = _net()
    start = snapshot(net)
    _moved(net)
    assert not torch.equal(start["0.weight"], net.state_dict()["0.weight"])
    with pytest.raises(ValueError, match=r"alpha in \[0, 1\], got 1.5"):
        interpolate_(net, start, 1.5)
    with pytest.raises(ValueError, match="lacks"):
        interpolate_(net, {}, 0.5)
