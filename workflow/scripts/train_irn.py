"""Snakemake adapter: rule params -> clims_core.stages.train_irn.run."""

from clims_core.logs import stage_logging
from clims_core.stages import train_irn

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], f"train_irn[{sm.wildcards.method}]"):
    settings = train_irn.settings_from_config(sm.params.refine, sm.params.cam, sm.params.seed, sm.params.device,
                                              sm.threads)
    section = {"method": sm.wildcards.method, "irn": dict(sm.params.refine["irn"])}
    train_irn.run(settings, sm.input.manifest, sm.input.ir_labels, sm.output.checkpoint, sm.output.metrics,
                  cam_checkpoint=sm.input.get("cam_checkpoint"), config=section)
