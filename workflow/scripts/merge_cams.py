"""Snakemake adapter: shard stores -> clims_core.stages.merge_cams.run."""

from clims_core.logs import stage_logging
from clims_core.stages import merge_cams

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "merge_cams"):
    merge_cams.run(list(sm.input), sm.output[0])
