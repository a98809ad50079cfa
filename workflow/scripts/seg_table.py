"""Snakemake adapter: rule params -> clims_core.stages.seg_table.run."""

from clims_core.logs import stage_logging
from clims_core.stages import seg_table

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "seg_table"):
    seg_table.run(dict(sm.params.runs), dict(sm.params.evals), sm.output.md, sm.output.tsv)
