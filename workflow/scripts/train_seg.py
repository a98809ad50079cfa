"""Snakemake adapter: rule params -> clims_core.stages.train_seg.run."""

from clims_core.logs import stage_logging
from clims_core.stages import train_seg

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_name = sm.wildcards.run
with stage_logging(sm.log[0], f"train_seg[{run_name}]"):
    settings = train_seg.settings_from_config(run_name, sm.params.seg, sm.params.cam, sm.params.seed,
                                              sm.params.device, sm.threads)
    section = {"run": run_name, "seg": dict(sm.params.seg), "cam_backbone": dict(sm.params.cam["backbone"])}
    train_seg.run(settings, sm.input.manifest, sm.output.checkpoint, sm.output.metrics,
                  pseudo_index=sm.input.get("pseudo"), init_checkpoint=sm.input.get("init"), config=section)
