"""Snakemake adapter: rule params -> clims_core.stages.train_irn (in this process, or under torchrun when gpus > 1)."""

from clims_core.logs import stage_logging
from clims_core.training.launch import run_stage

sm = snakemake  # noqa: F821 (injected by Snakemake)
processes = sm.params.gpus
with stage_logging(sm.log[0], f"train_irn[{sm.wildcards.method}]"):
    arguments = {
        "method": sm.wildcards.method, "refine": dict(sm.params.refine), "cam": dict(sm.params.cam),
        "seed": sm.params.seed, "device": sm.params.device, "precision": sm.params.precision,
        "threads": max(1, sm.threads // processes),
        "checkpoint_every": sm.params.checkpoint_every, "manifest": sm.input.manifest,
        "ir_labels": sm.input.ir_labels, "cam_checkpoint": sm.input.get("cam_checkpoint"),
        "checkpoint": sm.output.checkpoint, "metrics": sm.output.metrics,
    }
    run_stage("train_irn", arguments, processes, sm.params.work_dir)
