"""Snakemake adapter: rule params -> clims_core.stages.eval_cams.run."""

from clims_core.logs import stage_logging
from clims_core.stages import eval_cams

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "eval_cams"):
    settings = eval_cams.EvalCamsSettings(split=sm.wildcards.split, thresholds=tuple(sm.params.thresholds),
                                          confounders=dict(sm.params.confounders), threads=sm.threads)
    method = sm.wildcards.method
    eval_cams.run(settings, sm.input.manifest, sm.input.store, sm.output.json, sm.output.tsv, sm.output.plot, method)
