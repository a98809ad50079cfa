"""Snakemake adapter: rule params -> clims_core.stages.make_cams.run (one shard or the whole split)."""

from clims_core.logs import stage_logging
from clims_core.stages import make_cams

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "make_cams"):
    settings = make_cams.MakeCamsSettings(**sm.params.settings, threads=sm.threads)
    make_cams.run(settings, sm.input.manifest, sm.input.checkpoint, sm.output[0], reuse_path=sm.input.get("reuse"))
