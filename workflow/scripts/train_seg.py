"""Snakemake adapter of both segmentation trainings: rule params -> clims_core.stages.<rule> (train_seg: CCT,
train_deeplab: DeepLabV2; in this process, or under torchrun when gpus > 1)."""

from clims_core.logs import stage_logging
from clims_core.training.launch import run_stage

sm = snakemake  # noqa: F821 (injected by Snakemake)
processes = sm.params.gpus
with stage_logging(sm.log[0], f"{sm.rule}[{sm.wildcards.run}]"):
    arguments = {
        "run": sm.wildcards.run, "seg": dict(sm.params.seg), "cam": dict(sm.params.cam), "seed": sm.params.seed,
        "device": sm.params.device, "precision": sm.params.precision, "threads": max(1, sm.threads // processes),
        "checkpoint_every": sm.params.checkpoint_every, "manifest": sm.input.manifest,
        "pseudo": sm.input.get("pseudo"), "init": sm.input.get("init"), "checkpoint": sm.output.checkpoint,
        "metrics": sm.output.metrics,
    }
    run_stage(sm.rule, arguments, processes, sm.params.work_dir)
