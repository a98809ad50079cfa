"""One tiny demo run of the whole workflow per test session, shared by the end-to-end tests that inspect its outputs."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.workflow import TINY_DEMO, snakemake


@dataclass(frozen=True)
class TinyRun:
    workdir: Path
    result: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """``snakemake --cores 2`` on TINY_DEMO in a scratch folder; each test asserts what it needs of it."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    return TinyRun(workdir, snakemake(workdir, TINY_DEMO, "--cores", "2"))
