"""Snakemake adapter: rule params -> clims_core.stages.crf_plane.run (refine.crf.bg_thres: search)."""

from clims_core.logs import stage_logging
from clims_core.refine.crf import CrfSettings
from clims_core.stages import crf_plane

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "crf_plane"):
    refiner = sm.params.refiner
    settings = crf_plane.CrfPlaneSettings(planes=tuple(refiner["search_planes"]), images=refiner["search_images"],
                                          unary=refiner["unary"], crf=CrfSettings(**sm.params.crf),
                                          processes=sm.threads)
    crf_plane.run(settings, sm.input.manifest, sm.input.store, sm.output[0], method=sm.wildcards.method)
