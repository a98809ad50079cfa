"""Snakemake adapter: rule params -> clims_core.stages.eval_masks.run."""

from clims_core.logs import stage_logging
from clims_core.stages import eval_masks

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "eval_masks"):
    settings = eval_masks.EvalMasksSettings(split="train", confounders=dict(sm.params.confounders),
                                            threads=sm.threads)
    eval_masks.run(settings, sm.input.manifest, sm.input.index, sm.output.json, sm.output.tsv, sm.wildcards.method,
                   sm.wildcards.refiner)
