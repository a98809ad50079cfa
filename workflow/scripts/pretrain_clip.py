"""Snakemake adapter: rule params -> clims_core.stages.pretrain_clip (in this process, or under torchrun when
gpus > 1)."""

from clims_core.logs import stage_logging
from clims_core.training.launch import run_stage

sm = snakemake  # noqa: F821 (injected by Snakemake)
processes = sm.params.gpus
with stage_logging(sm.log[0], "pretrain_clip"):
    arguments = {
        "section": dict(sm.params.section), "captions": sm.params.captions, "seed": sm.params.seed,
        "device": sm.params.device, "threads": max(1, sm.threads // processes),
        "checkpoint_every": sm.params.checkpoint_every, "checkpoint": sm.output.checkpoint,
        "metrics": sm.output.metrics,
    }
    run_stage("pretrain_clip", arguments, processes, sm.params.work_dir)
