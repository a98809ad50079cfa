"""Device and precision: the autocast each ``precision`` gives, and that the stages hand theirs to autocast."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from clims_core.device import autocast, autocast_dtype
from clims_core.stages import make_cams
from clims_core.training import loop
from clims_core.training.distributed import Distributed

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


@pytest.mark.parametrize("device, precision, expected", [
    (CUDA, "auto", torch.bfloat16), (CUDA, "bf16", torch.bfloat16), (CUDA, "fp32", None),
    (CPU, "auto", None), (CPU, "fp32", None),
])
def test_precision_picks_the_autocast_dtype(device, precision, expected):
    assert autocast_dtype(device, precision) == expected


def test_fp32_and_cpu_run_without_autocast_and_unknown_precision_is_refused():
    assert isinstance(autocast(CUDA, "fp32"), contextlib.nullcontext)
    assert isinstance(autocast(CPU), contextlib.nullcontext)
    with pytest.raises(ValueError, match="precision: expected auto, bf16 or fp32, got 'fp16'"):
        autocast(CUDA, "fp16")


def _recording(calls: list) -> callable:
    def fake_autocast(device: torch.device, precision: str = "auto") -> contextlib.nullcontext:
        calls.append((device.type, precision))
        return contextlib.nullcontext()
    return fake_autocast


class _Objective(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, images, labels, step, total):
        loss = self.weight * images.mean()
        return loss, {}


def test_training_step_and_make_cams_hand_their_precision_to_autocast(monkeypatch):
    calls: list = []
    monkeypatch.setattr(loop, "autocast", _recording(calls))
    monkeypatch.setattr(make_cams, "autocast", _recording(calls))
    loop.LossStep(_Objective(), CPU, Distributed(), "fp32")((torch.ones(2, 3, 4, 4), torch.ones(2, 1)), 0, 1)
    net = nn.Conv2d(3, 2, 1)
    net.cams = net
    make_cams.multiscale_cams(net, torch.zeros(3, 8, 8, dtype=torch.uint8), (1.0, 0.5), True, CPU, "fp32")
    assert calls == [("cpu", "fp32")] * 3  # one training step, two scales


def test_stage_settings_carry_the_config_precision():
    from clims_core.stages import train_cam, train_irn

    backbone = {"depth": 18, "width": 8, "strides": [2, 2, 2, 1], "norm": "batch"}
    cam = {"backbone": backbone, "backbone_weights": None,
           "train": {"epochs": 1, "batch_size": 2, "lr": 0.1, "weight_decay": 0.0, "momentum": 0.9, "crop": 64,
                     "resize_long": [48, 80], "workers": 0}}
    refine = {"irn": {"trunk": "cam", "epochs": 1, "batch_size": 2, "crop": 64, "scale_range": [1.0, 1.0], "lr": 0.1,
                      "weight_decay": 0.0, "momentum": 0.9, "radius": 5, "workers": 0}}
    run = {"seed": 0, "device": "cpu", "threads": 1}
    assert train_cam.settings_from_config("cam", cam, None, **run, precision="fp32").precision == "fp32"
    assert train_irn.settings_from_config(refine, cam, **run, precision="fp32").precision == "fp32"
    assert train_cam.settings_from_config("cam", cam, None, **run).precision == "auto"
    with pytest.raises(TypeError):  # runtime values are keyword-only: no seed can land where a device was meant
        train_cam.settings_from_config("cam", cam, None, 0, "cpu", 1)
