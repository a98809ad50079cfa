"""Multi-process training through ``torchrun``: the rule's adapter writes the stage's arguments as JSON, and
``python -m torch.distributed.run --nproc_per_node N -m clims_core.training.launch <stage> <arguments.json>`` runs
the stage's ``run_from_arguments`` in every process (each joins the DDP group, see :mod:`.distributed`).

Only the stages listed in :data:`STAGES` can be launched, and the JSON carries plain values: nothing in a config is
ever imported or evaluated as code.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from clims_core.io.atomic import write_json

STAGES = {stage: f"clims_core.stages.{stage}" for stage in
          ("pretrain_clip", "pretrain_trunk", "finetune_clip", "train_cam", "train_irn", "train_seg",
           "train_deeplab")}


def _known(stage: str) -> str:
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} cannot be launched (known: {sorted(STAGES)})")
    return stage


def torchrun_command(stage: str, arguments_path: str | Path, processes: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "clims_core.training.launch", _known(stage), str(arguments_path)]


def stage_command(stage: str, arguments_path: str | Path, processes: int) -> list[str]:
    """The command that runs ``stage`` on a JSON arguments file: torchrun for several processes, else plain Python."""
    if processes > 1:
        return torchrun_command(stage, arguments_path, processes)
    return [sys.executable, "-m", "clims_core.training.launch", _known(stage), str(arguments_path)]


def run_stage(stage: str, arguments: dict[str, Any], processes: int, work_dir: str | Path) -> None:
    """Run ``stage`` in this process (``processes`` 1) or in ``processes`` torchrun processes; its step checkpoint
    is ``work_dir/resume.pt`` unless the arguments name one."""
    arguments = {"resume": str(Path(work_dir) / "resume.pt"), **arguments}
    module = importlib.import_module(STAGES[stage])
    if processes <= 1:
        module.run_from_arguments(arguments)
        return
    path = Path(work_dir) / "torchrun_arguments.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, arguments)
    subprocess.run(torchrun_command(stage, path, processes), check=True)


def main(argv: list[str]) -> None:
    stage, path = argv
    module = importlib.import_module(STAGES[stage])
    module.run_from_arguments(json.loads(Path(path).read_text(encoding="utf-8")))


if __name__ == "__main__":
    main(sys.argv[1:])
