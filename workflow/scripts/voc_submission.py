"""Snakemake adapter: rule params -> clims_core.stages.voc_submission.run."""

from clims_core.data.manifest import Manifest
from clims_core.logs import stage_logging
from clims_core.stages import voc_submission

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], f"voc_submission[{sm.wildcards.run}]"):
    section = sm.params.submission
    settings = voc_submission.settings_from_config(section, sm.params.eval, sm.params.densecrf, sm.params.device,
                                                   sm.params.precision, sm.threads)
    voc_submission.run(settings, sm.input.checkpoint, section["test_root"], section["test_list"],
                       Manifest.load(sm.input.manifest).classes, sm.output.folder, sm.output.archive,
                       sm.wildcards.run)
