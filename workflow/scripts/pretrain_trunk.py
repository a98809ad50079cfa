"""Snakemake adapter: rule params -> clims_core.stages.pretrain_trunk (in this process, or under torchrun when
gpus > 1)."""

from clims_core.logs import stage_logging
from clims_core.training.launch import run_stage

sm = snakemake  # noqa: F821 (injected by Snakemake)
processes = sm.params.gpus
with stage_logging(sm.log[0], "pretrain_trunk"):
    arguments = {
        "section": dict(sm.params.section), "backbone": dict(sm.params.backbone),
        "classes": list(sm.params.classes), "stuff_classes": list(sm.params.stuff_classes),
        "class_names": dict(sm.params.class_names), "captions": sm.params.captions, "seed": sm.params.seed,
        "device": sm.params.device, "precision": sm.params.precision, "threads": max(1, sm.threads // processes),
        "checkpoint_every": sm.params.checkpoint_every, "weights": sm.output.weights, "metrics": sm.output.metrics,
    }
    run_stage("pretrain_trunk", arguments, processes, sm.params.work_dir)
