"""Snakemake adapter: rule params -> clims_core.stages.prepare_data.run."""

from pathlib import Path

from clims_core.logs import stage_logging
from clims_core.stages import prepare_data

with stage_logging(snakemake.log[0], "prepare_data"):  # noqa: F821 (injected by Snakemake)
    settings = dict(snakemake.params.settings)  # noqa: F821
    settings["root"] = Path(settings["root"])
    settings["captions"] = Path(settings["captions"]) if settings["captions"] else None
    prepare_data.run(prepare_data.PrepareSettings(**settings, threads=snakemake.threads), snakemake.output.manifest)  # noqa: F821
