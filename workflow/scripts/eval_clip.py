"""Snakemake adapter: rule params -> clims_core.stages.eval_clip.run."""

from clims_core.logs import stage_logging
from clims_core.stages import eval_clip

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_logging(sm.log[0], "eval_clip"):
    settings = eval_clip.EvalClipSettings(object_prompt=sm.params.prompts["object"], stuff_prompt=sm.params.prompts["stuff"],
                                          class_names=dict(sm.params.class_names), device=sm.params.device,
                                          threads=sm.threads)
    clips = {name: tuple(pair) for name, pair in sm.params.clips.items()}
    eval_clip.run(settings, sm.input.manifest, clips, sm.output.json, sm.output.tsv)
