"""Snakemake adapter: rule params -> clims_core.stages.train_cam.run."""

from clims_core.logs import stage_logging
from clims_core.stages import train_cam

sm = snakemake  # noqa: F821 (injected by Snakemake)
method = sm.wildcards.method
with stage_logging(sm.log[0], f"train_cam[{method}]"):
    settings = train_cam.settings_from_config(method, sm.params.cam, sm.params.clims, sm.params.clip_section,
                                              sm.params.seed, sm.params.device, sm.threads)
    section = {"method": method, "cam": dict(sm.params.cam), **({"clims": dict(sm.params.clims)} if method == "clims" else {})}
    train_cam.run(settings, sm.input.manifest, sm.output.checkpoint, sm.output.metrics,
                  init_checkpoint=sm.input.get("init"), clip=tuple(sm.params.clip) if method == "clims" else None,
                  config=section)
