"""Snakemake adapter: rule params -> clims_core.stages.report.run."""

from clims_core.logs import stage_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "report"):
    from clims_core.stages import report  # inside: an import error lands in the rule's log too

    section = sm.params.report
    settings = report.ReportSettings(figure_classes=tuple(section["figure_classes"] or ()),
                                     figure_rows=section["figure_rows"], figure_baseline=section["figure_baseline"],
                                     confounders=dict(sm.params.confounders), split=sm.params.split)
    report.run(settings, sm.input.summary, sm.input.manifest, dict(sm.params.stores), sm.output.html, sm.output.figures,
               mask_dirs=dict(sm.params.mask_dirs), seg_examples=dict(sm.params.seg_examples))
