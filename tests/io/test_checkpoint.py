"""Checkpoints: atomic, with provenance, and never unpickling arbitrary objects."""

from __future__ import annotations

import pickle

import pytest
import torch

from clims_core.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from clims_core.version import code_version


class Evil:
    """Unpickling this creates ``marker``: proof that the load ran code."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path / "c.pt", model.state_dict(), {"lr": 0.1}, step=7)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded["step"] == 7 and loaded["config"] == {"lr": 0.1} and loaded["code_version"] == code_version()
    assert torch.equal(loaded["model"]["weight"], model.weight)


def test_bad_files_name_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="junk.pt: cannot be read safely"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"model": {}}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="partial.pt: missing keys"):
        load_checkpoint(tmp_path / "partial.pt")


def test_pickled_objects_are_refused_not_run(tmp_path):
    marker = tmp_path / "evil-marker"  # per test: concurrent sessions cannot see each other's
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"model": Evil(marker), "config": {}, "step": 0}, handle)
    torch.save({"model": Evil(marker), "config": {}, "step": 0}, tmp_path / "evil2.pt")
    for name in ("evil.pt", "evil2.pt"):
        with pytest.raises(CheckpointError, match=name):
            load_checkpoint(tmp_path / name)
    assert not marker.exists()
