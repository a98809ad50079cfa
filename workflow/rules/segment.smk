# The segment target: one of this config's segmentation runs applied to the user's images (segment.images), masks +
# overlays + index under results/segment/. Off (no rule target in `all`) while segment.images is null.

from clims_core.config import resolve
from clims_core.data.image_list import image_paths

SEGMENT = CFG["segment"]
if SEGMENT["images"] is not None:
    _segment_run = SEGMENT["run"] or (list(SEG_RUNS)[-1] if SEG_RUNS else None)
    if _segment_run not in SEG_RUNS:
        raise WorkflowError(f"config key 'segment.run': {_segment_run!r} is not a segmentation run of this config "
                            f"(runs: {list(SEG_RUNS)}; seg.methods and seg.pseudo_methods make them)")
    try:
        _SEGMENT_IMAGES = [str(p) for p in image_paths(resolve(Path.cwd(), SEGMENT["images"]))]
    except ValueError as error:
        raise WorkflowError(str(error)) from None
    SEGMENT_DIR = f"{RESULTS}/segment/{_segment_run}-{tag([SEGMENT, SEG['eval'], _EVAL_CRF], SEG_TAGS[_segment_run])}"
    ALL_TARGETS.append(SEGMENT_DIR)

    rule segment:
        input:
            checkpoint=f"{seg_dir(_segment_run)}/model.pt",
            manifest=MANIFEST,
            images=_SEGMENT_IMAGES,  # declared, so a changed image reruns the target
        output:
            directory(SEGMENT_DIR),
        params:
            segment=SEGMENT,
            eval=SEG["eval"],
            densecrf=_EVAL_CRF,
            run=_segment_run,
            source=SEGMENT["images"],
            device=CFG["device"],
            precision=CFG["precision"],
            code=code("segment"),
        threads: 2
        resources:
            gpu=min(GPUS, 1),
        log:
            f"{LOGS}/segment/{_segment_run}.log",
        script:
            "../scripts/segment.py"
