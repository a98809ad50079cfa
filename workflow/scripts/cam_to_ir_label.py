"""Snakemake adapter: rule params -> clims_core.stages.cam_to_ir_label.run (one shard or the whole split)."""

from pathlib import Path

from clims_core.logs import stage_logging
from clims_core.refine.crf import CrfSettings
from clims_core.refine.thresholds import read_stage_json, resolve_ir_label
from clims_core.stages import cam_to_ir_label

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "cam_to_ir_label"):
    thresholds = resolve_ir_label(sm.params.ir_label, read_stage_json(sm.input.get("cam_eval")))
    settings = cam_to_ir_label.IrLabelSettings(crf=CrfSettings(**sm.params.crf), **thresholds,
                                               **sm.params.shard, processes=sm.threads)
    index = Path(sm.output[0])
    folder = index.parent.parent if settings.shards > 1 else index.parent
    cam_to_ir_label.run(settings, sm.input.manifest, sm.input.store, folder, index, method=sm.wildcards.method)
