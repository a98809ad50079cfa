"""Snakemake adapter: rule params -> clims_core.stages.finetune_clip (in this process, or under torchrun when
gpus > 1)."""

from clims_core.logs import stage_logging
from clims_core.training.launch import run_stage

sm = snakemake  # noqa: F821 (injected by Snakemake)
processes = sm.params.gpus
with stage_logging(sm.log[0], "finetune_clip"):
    arguments = {
        "section": dict(sm.params.section), "class_names": dict(sm.params.class_names), "clip": list(sm.params.clip),
        "seed": sm.params.seed, "device": sm.params.device, "threads": max(1, sm.threads // processes),
        "checkpoint_every": sm.params.checkpoint_every, "manifest": sm.input.manifest,
        "checkpoint": sm.output.checkpoint, "metrics": sm.output.metrics,
    }
    run_stage("finetune_clip", arguments, processes, sm.params.work_dir)
