"""Snakemake adapter: rule inputs -> clims_core.report.summary.write_summary."""

from clims_core.logs import stage_logging
from clims_core.report.summary import write_summary

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "summary"):
    write_summary(sm.output[0], clip_eval=sm.input.clip_eval, cam_evals=dict(sm.params.cam_evals),
                  benchmarks=dict(sm.params.benchmarks))
