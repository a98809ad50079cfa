"""Snakemake adapter: rule params -> clims_core.stages.make_demo_world.run."""

from clims_core.logs import stage_logging
from clims_core.stages import make_demo_world

with stage_logging(snakemake.log[0], "make_demo_world"):  # noqa: F821 (injected by Snakemake)
    make_demo_world.run(dict(snakemake.params.settings), snakemake.output[0], workers=snakemake.threads)  # noqa: F821
