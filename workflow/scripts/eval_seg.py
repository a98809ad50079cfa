"""Snakemake adapter: rule params -> clims_core.stages.eval_seg.run."""

from clims_core.logs import stage_logging
from clims_core.stages import eval_seg

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], f"eval_seg[{sm.wildcards.run}]"):
    settings = eval_seg.settings_from_config(sm.params.eval, sm.params.densecrf, sm.params.device,
                                             sm.params.precision, sm.threads)
    eval_seg.run(settings, sm.input.manifest, sm.input.checkpoint, sm.output.json, sm.output.tsv, sm.wildcards.run,
                 examples_dir=sm.output.examples)
