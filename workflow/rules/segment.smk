# The segment and voc_submission targets (plan/segment.smk decides whether this config has them).

if SEGMENT["images"] is not None:

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
            device=CFG["device"],
            precision=CFG["precision"],
            code=code("segment"),
        threads: 2
        resources:
            gpu=min(GPUS, 1),
        log:
            f"{LOGS}/segment/{_segment_run}.log",
        conda:
            CONDA_ENV
        script:
            "../scripts/segment.py"


if SUBMISSION["test_root"] is not None:

    rule voc_submission:
        input:
            checkpoint=f"{RESULTS}/seg/{{run}}-{{tag}}/model.pt",
            manifest=MANIFEST,
        output:
            folder=directory(f"{RESULTS}/submission/{{run}}-{{tag}}-{{subtag}}"),
            archive=f"{RESULTS}/submission/{{run}}-{{tag}}-{{subtag}}.tar.gz",
        params:
            submission=SUBMISSION,
            eval=SEG["eval"],
            densecrf=_EVAL_CRF,
            device=CFG["device"],
            precision=CFG["precision"],
            code=code("voc_submission"),
        wildcard_constraints:
            run="|".join(_submit_runs),
            subtag=SUBMISSION_TAG,
        threads: 2
        resources:
            gpu=min(GPUS, 1),
        log:
            f"{LOGS}/voc_submission/{{run}}-{{tag}}-{{subtag}}.log",
        conda:
            CONDA_ENV
        script:
            "../scripts/voc_submission.py"
