"""The shared training loop: batch plans, DDP (2 gloo processes = 1 process on the same global batch), resume after
SIGKILL and SIGTERM (final weights equal an uninterrupted run's), bit-identical reruns."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from torch import nn
from torch.utils.data import Dataset

from clims_core.data.segmentation import PassSampler
from clims_core.io.checkpoint import load_checkpoint
from clims_core.training.distributed import Distributed
from clims_core.training.launch import stage_command, torchrun_command
from clims_core.training.loop import (TERMINATED_EXIT_CODE, LoopSettings, PairedStreams, ResumeState, StepClock,
                                      epoch_batches, train_loop)

REPO = Path(__file__).resolve().parents[2]


def test_epoch_batches_are_a_seeded_permutation_without_the_last_partial_batch():
    batches = epoch_batches(10, 4, seed=3, epoch=1)
    assert [len(b) for b in batches] == [4, 4]
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == 8 and set(flat) <= set(range(10))
    assert batches == epoch_batches(10, 4, seed=3, epoch=1)
    assert batches != epoch_batches(10, 4, seed=3, epoch=2)


def test_process_shares_union_to_the_global_batch():
    batch = list(range(8))
    shares = [Distributed(rank, 2).share(batch) for rank in range(2)]
    assert sorted(shares[0] + shares[1]) == batch and shares[0] == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="not divisible"):
        Distributed(0, 3).share(batch)
    assert Distributed(0, 2).gather_order(6) == [0, 2, 4, 1, 3, 5]  # rank 0's rows, then rank 1's
    assert Distributed().gather_order(3) == [0, 1, 2]


def test_torchrun_launches_only_known_stages():
    assert "clims_core.training.launch" in torchrun_command("train_cam", "a.json", 2)
    with pytest.raises(ValueError, match="cannot be launched"):
        torchrun_command("os.system", "a.json", 2)
    assert stage_command("train_seg", "a.json", 1)[1:] == ["-m", "clims_core.training.launch", "train_seg", "a.json"]
    with pytest.raises(ValueError, match="cannot be launched"):
        stage_command("os.system", "a.json", 1)


def test_run_stage_keeps_the_step_checkpoint_in_the_work_folder(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from clims_core.training import launch

    seen = []
    monkeypatch.setattr(launch.importlib, "import_module", lambda name: SimpleNamespace(run_from_arguments=seen.append))
    launch.run_stage("train_irn", {"seed": 0}, 1, tmp_path / "work")
    launch.run_stage("train_irn", {"seed": 0, "resume": None}, 1, tmp_path / "work")
    assert seen == [{"resume": str(tmp_path / "work" / "resume.pt"), "seed": 0}, {"resume": None, "seed": 0}]


def _arguments(tiny_world, out: Path, epochs: int = 1, checkpoint_every: int = 0) -> dict:
    cam = {"backbone": {"depth": 18, "width": 8, "strides": [2, 2, 2, 1], "norm": "frozen"}, "backbone_weights": None,
           "train": {"epochs": epochs, "batch_size": 8, "lr": 0.01, "weight_decay": 1e-4, "momentum": 0.9, "crop": 64,
                     "resize_long": [48, 80], "workers": 0},
           "puzzlecam": {"alpha": 4.0, "schedule": 0.5, "level": "feature"}}
    return {"method": "cam", "cam": cam, "clims": None, "clip": None, "seed": 0, "device": "cpu",
            "threads": 1, "checkpoint_every": checkpoint_every, "manifest": str(tiny_world["manifest"]),
            "checkpoint": str(out / "model.pt"), "metrics": str(out / "metrics.json"), "resume": str(out / "resume.pt")}


def _launch(arguments: dict, out: Path, processes: int = 1) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "arguments.json"
    path.write_text(json.dumps(arguments))
    command = stage_command("train_cam", path, processes)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen, timeout: float = 600) -> int:
    output, _ = process.communicate(timeout=timeout)
    if process.returncode not in (0, TERMINATED_EXIT_CODE, -signal.SIGKILL):
        raise AssertionError(output[-3000:])
    return process.returncode


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "model.pt")["model"]


def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tiny_world, tmp_path):
    """Same global batches (each process takes every 2nd sample), DDP averages the gradients: the weights after
    an epoch agree up to float summation order (frozen BatchNorm: batch statistics would differ per process)."""
    single, double = tmp_path / "one", tmp_path / "two"
    _finish(_launch(_arguments(tiny_world, single), single))
    _finish(_launch(_arguments(tiny_world, double), double, processes=2))
    one, two = _weights(single), _weights(double)
    assert json.loads((double / "metrics.json").read_text())["processes"] == 2
    for name in one:
        assert torch.allclose(one[name], two[name], rtol=1e-3, atol=1e-5), name
    assert not (double / "resume.pt").exists()


def test_same_seed_same_threads_gives_bit_identical_weights(tiny_world, tmp_path):
    """README "Determinism": on one machine, a training stage rerun with the same seed and thread count ends with the
    same bits (trained BatchNorm and two intra-op threads included); other CPUs give other bits."""
    runs = []
    for name in ("first", "second"):
        arguments = _arguments(tiny_world, tmp_path / name)
        arguments["cam"]["backbone"]["norm"] = "batch"
        arguments["threads"] = 2
        _finish(_launch(arguments, tmp_path / name))
        runs.append(_weights(tmp_path / name))
    assert runs[0].keys() == runs[1].keys()
    for name, value in runs[0].items():
        assert torch.equal(value, runs[1][name]), name


@pytest.fixture(scope="module")
def uninterrupted(tiny_world, tmp_path_factory) -> Path:
    reference = tmp_path_factory.mktemp("uninterrupted")
    _finish(_launch(_arguments(tiny_world, reference, epochs=2), reference))
    return reference


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killed_training_resumes_to_the_uninterrupted_weights(tiny_world, uninterrupted, tmp_path, how):
    reference = uninterrupted
    out = tmp_path / "killed"
    arguments = _arguments(tiny_world, out, epochs=2, checkpoint_every=4)
    process = _launch(arguments, out)
    deadline = time.time() + 300
    while not (out / "resume.pt").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "training ended before its first resume checkpoint"
    process.send_signal(how)
    assert _finish(process) == (TERMINATED_EXIT_CODE if how == signal.SIGTERM else -signal.SIGKILL)
    assert not (out / "model.pt").exists()  # no final checkpoint from an interrupted run
    stopped_at = load_checkpoint(out / "resume.pt", required=("step",))["step"]
    assert 0 < stopped_at < 40
    _finish(_launch(arguments, out))
    assert load_checkpoint(out / "model.pt")["step"] == 40
    for name, value in _weights(reference).items():
        assert torch.equal(value, _weights(out)[name]), name
    assert not (out / "resume.pt").exists()


class _Keyed(Dataset):
    """Items ``(value, index)`` for ``(pass, index)`` keys: the value tells which key was read."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        draw, index = key
        return torch.tensor([float(index + 100 * draw)]), index


def _paired_source() -> PairedStreams:
    """5 pixel-labeled images in batches of 2 (batches span passes), 13 image-level in batches of 4 (3 steps/epoch)."""
    return PairedStreams([(_Keyed(5), PassSampler(5, seed=0, stream=0), 2),
                          (_Keyed(13), PassSampler(13, seed=0, stream=1), 4)])


def _paired_run(resume: ResumeState, crash_at: int | None = None) -> tuple[nn.Module, list]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 8), nn.Dropout(0.5), nn.Linear(8, 1))  # random like CCT's perturbations
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    for group in optimizer.param_groups:
        group["initial_lr"] = 1e-5
    seen = []

    def step_fn(batch, step, total):
        if step == crash_at:
            raise RuntimeError("killed")
        (x_l, _), (x_u, _) = batch
        seen.append((step, x_l.flatten().tolist(), x_u.flatten().tolist()))
        loss = model(torch.cat([x_l, x_u])).pow(2).mean()
        loss.backward()
        return {"loss": loss.item()}

    train_loop(step_fn, model, optimizer, _paired_source(), LoopSettings(epochs=2, checkpoint_every=2),
               torch.device("cpu"), Distributed(), resume, "paired", lambda step, total: 1.0 - step / total)
    return model, seen


def test_paired_streams_resume_mid_epoch_with_the_batches_of_an_uninterrupted_run(tmp_path):
    """train_seg's two endless streams: a run that dies after its step-4 checkpoint (mid epoch 2) continues at step 4
    with the same batches of both streams and the same random draws (dropout), and ends with the uninterrupted run's
    weights."""
    reference, seen = _paired_run(ResumeState(None, "x"))
    assert [s[0] for s in seen] == list(range(6))
    labeled = [v for s in seen for v in s[1]]
    assert [int(v) // 100 for v in labeled[:10]] == [0] * 5 + [1] * 5  # one pass after another, across batches
    resume = ResumeState(tmp_path / "resume.pt", "x")
    with pytest.raises(RuntimeError, match="killed"):
        _paired_run(resume, crash_at=5)
    assert load_checkpoint(resume.path, required=("step",))["step"] == 4
    resumed, seen_resumed = _paired_run(resume)
    assert seen_resumed == seen[4:]
    for name, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_process_shares_of_paired_streams_union_to_the_global_batches():
    whole = list(_paired_source().epoch(1, 1, Distributed()))
    shares = [list(_paired_source().epoch(1, 1, Distributed(rank, 2))) for rank in range(2)]
    assert len(whole) == 2 and all(len(share) == 2 for share in shares)
    for step, batch in enumerate(whole):
        for stream in range(2):  # values name their (pass, index) key, so equal multisets mean the same keys
            values = [share[step][stream][0].flatten().tolist() for share in shares]
            assert len(values[0]) == len(values[1]) == len(batch[stream][0]) // 2
            assert sorted(values[0] + values[1]) == sorted(batch[stream][0].flatten().tolist())


def _average_in_process(rank: int, init_file: str, results: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    model = nn.Linear(2, 1)
    model.weight.grad = torch.full((1, 2), float(rank + 1))
    model.bias.grad = None  # a parameter without a gradient stays without one
    Distributed(rank, 2).average_gradients(model)
    torch.save({"weight": model.weight.grad, "bias": model.bias.grad}, f"{results}.{rank}")
    torch.distributed.destroy_process_group()


def test_average_gradients_gives_every_process_the_mean(tmp_path):
    torch.multiprocessing.spawn(_average_in_process, args=(str(tmp_path / "init"), str(tmp_path / "grads")), nprocs=2)
    for rank in range(2):
        grads = torch.load(tmp_path / f"grads.{rank}", weights_only=True)
        assert torch.equal(grads["weight"], torch.full((1, 2), 1.5)) and grads["bias"] is None


def test_clock_leaves_out_the_first_step_and_reports_the_waiting_share(caplog):
    clock = StepClock()
    clock.record(waited=5.0, took=9.0)  # the first: workers starting
    clock.record(waited=0.5, took=2.0)
    clock.record(waited=0.5, took=2.0)
    assert (clock.steps, clock.seconds, clock.waiting) == (2, 4.0, 1.0)
    with caplog.at_level(logging.INFO, logger="clims_core.training.loop"):
        clock.report("train_cam[cam]")
    assert "train_cam[cam]: 2 steps timed (after the first): 2.000 s a step, 25.0% of it waiting for data" in caplog.text


def test_a_single_step_is_reported_as_such(caplog):
    clock = StepClock()
    clock.record(waited=1.0, took=4.0)
    with caplog.at_level(logging.INFO, logger="clims_core.training.loop"):
        clock.report("train_irn")
    assert "1 steps timed (the only one, warm-up included): 4.000 s a step, 25.0% of it" in caplog.text
    StepClock().report("nothing")  # no steps: no line, no error
