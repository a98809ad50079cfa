"""Snakemake adapter: rule params -> clims_core.stages.finetune_clip.run."""

from clims_core.logs import stage_logging
from clims_core.stages import finetune_clip

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "finetune_clip"):
    settings = finetune_clip.settings_from_config(sm.params.section, sm.params.class_names, sm.params.seed,
                                                  sm.params.device, sm.threads)
    model, weights = sm.params.clip
    finetune_clip.run(settings, sm.input.manifest, model, weights, sm.output.checkpoint, sm.output.metrics,
                      config=dict(sm.params.section))
