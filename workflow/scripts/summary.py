"""Snakemake adapter: rule inputs -> clims_core.stages.summary.run."""

from clims_core.logs import stage_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "summary"):
    from clims_core.stages import summary  # inside: an import error lands in the rule's log too

    summary.run(sm.output[0], clip_eval=sm.input.clip_eval or None, cam_evals=dict(sm.params.cam_evals),
                mask_evals=dict(sm.params.mask_evals), seg_evals=dict(sm.params.seg_evals),
                benchmarks=dict(sm.params.benchmarks), provenance=dict(sm.params.provenance),
                trunk_metrics=sm.input.get("trunk_metrics"))
