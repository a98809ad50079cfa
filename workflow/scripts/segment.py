"""Snakemake adapter: rule params -> clims_core.stages.segment.run."""

from clims_core.data.manifest import Manifest
from clims_core.logs import stage_logging
from clims_core.stages import segment

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], f"segment[{sm.params.run}]"):
    settings = segment.settings_from_config(sm.params.segment, sm.params.eval, sm.params.densecrf, sm.params.device,
                                            sm.params.precision, sm.threads)
    segment.run(settings, sm.input.checkpoint, sm.params.segment["images"], Manifest.load(sm.input.manifest).classes,
                sm.output[0], sm.params.run)
