"""Snakemake adapter: rule params -> clims_core.stages.train_cam (in this process, or under torchrun when gpus > 1)."""

from clims_core.logs import stage_logging
from clims_core.training.launch import run_stage

sm = snakemake  # noqa: F821 (injected by Snakemake)
method = sm.wildcards.method
processes = sm.params.gpus
with stage_logging(sm.log[0], f"train_cam[{method}]"):
    arguments = {
        "method": method, "cam": dict(sm.params.cam), "clims": dict(sm.params.clims),
        "clip": list(sm.params.clip), "seed": sm.params.seed,
        "device": sm.params.device, "precision": sm.params.precision, "threads": max(1, sm.threads // processes),
        "checkpoint_every": sm.params.checkpoint_every, "manifest": sm.input.manifest, "init": sm.input.get("init"),
        "checkpoint": sm.output.checkpoint, "metrics": sm.output.metrics,
    }
    run_stage("train_cam", arguments, processes, sm.params.work_dir)
