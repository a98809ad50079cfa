"""Snakemake adapter: rule params -> clims_core.stages.crf_masks.run (one shard or the whole split)."""

from pathlib import Path

from clims_core.logs import stage_logging
from clims_core.refine.crf import CrfSettings
from clims_core.refine.thresholds import read_stage_json, resolve_crf
from clims_core.stages import crf_masks

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "crf_masks"):
    refiner = resolve_crf(sm.params.refiner, read_stage_json(sm.input.get("cam_eval")),
                          read_stage_json(sm.input.get("plane")))
    settings = crf_masks.CrfMaskSettings(crf=CrfSettings(**sm.params.crf), **refiner, **sm.params.shard,
                                         processes=sm.threads)
    index = Path(sm.output[0])
    folder = index.parent.parent if settings.shards > 1 else index.parent
    crf_masks.run(settings, sm.input.manifest, sm.input.store, folder, index, method=sm.wildcards.method)
