"""Snakemake adapter: rule params -> clims_core.stages.pretrain_clip.run."""

from clims_core.logs import stage_logging
from clims_core.stages import pretrain_clip

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "pretrain_clip"):
    settings = pretrain_clip.settings_from_config(sm.params.section, sm.params.seed, sm.params.device, sm.threads)
    pretrain_clip.run(settings, sm.params.captions, sm.output.checkpoint, sm.output.metrics, config=dict(sm.params.section))
