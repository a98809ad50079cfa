"""Snakemake adapter: rule inputs -> clims_core.stages.merge_masks.run."""

from clims_core.logs import stage_logging
from clims_core.stages import merge_masks

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "merge_masks"):
    merge_masks.run(list(sm.input), sm.output[0])
