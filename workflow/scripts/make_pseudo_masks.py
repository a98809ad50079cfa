"""Snakemake adapter: rule params -> clims_core.stages.make_pseudo_masks.run (one shard or the whole split)."""

from pathlib import Path

from clims_core.logs import stage_logging
from clims_core.refine.thresholds import read_stage_json, resolve_random_walk
from clims_core.stages import make_pseudo_masks

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "make_pseudo_masks"):
    random_walk = resolve_random_walk(sm.params.random_walk, read_stage_json(sm.input.get("cam_eval")))
    settings = make_pseudo_masks.PseudoMaskSettings(**random_walk, **sm.params.shard,
                                                    device=sm.params.device, precision=sm.params.precision,
                                                    threads=sm.threads)
    index = Path(sm.output[0])
    folder = index.parent.parent if settings.shards > 1 else index.parent
    make_pseudo_masks.run(settings, sm.input.manifest, sm.input.store, sm.input.irn, folder, index,
                          method=sm.wildcards.method)
