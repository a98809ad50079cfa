# CAM rules: train cam / puzzlecam / clims, multi-scale CAM stores (optionally sharded), evaluation.
# What they make for this config (tags, paths, input functions): plan/cam.smk.


rule train_cam:
    input:
        unpack(train_cam_inputs),
    output:
        checkpoint=f"{RESULTS}/cam/{{method}}-{{tag}}/model.pt",
        metrics=f"{RESULTS}/cam/{{method}}-{{tag}}/metrics.json",
    params:
        # Each method's own knobs only, so changing one method's settings never reruns another's training.
        cam=train_cam_section,
        clims=lambda wc: CLIMS_SECTION if wc.method == "clims" else {},
        clip=lambda wc: list(CLIP) if wc.method == "clims" else [],
        seed=CFG["seed"],
        device=CFG["device"],
        precision=CFG["precision"],
        gpus=CFG["gpus"],
        checkpoint_every=CFG["checkpoint_every"],
        work_dir=lambda wc: f"{WORK}/train_cam/{wc.method}-{wc.tag}",
        code=method_code("train_cam"),
    threads: 8
    resources:
        gpu=GPUS,
    log:
        f"{LOGS}/train_cam/{{method}}-{{tag}}.log",
    benchmark:
        f"{LOGS}/train_cam_{{method}}/{{tag}}.benchmark.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/train_cam.py"


rule make_cams:
    input:
        unpack(make_cams_inputs),
    output:
        SHARD_STORE if SHARDED else STORE,
    params:
        settings=make_cams_settings,
        code=code("make_cams"),
    threads: 8
    resources:
        gpu=min(GPUS, 1),
    log:
        f"{LOGS}/make_cams/{{method}}-{{tag}}-{{split}}{SHARD_SUFFIX}.log",
    benchmark:
        f"{LOGS}/make_cams/{{method}}-{{tag}}-{{split}}{SHARD_SUFFIX}.benchmark.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/make_cams.py"


if SHARDED:

    rule merge_cams:
        input:
            shard_stores,
        output:
            STORE,
        params:
            code=code("merge_cams"),
        log:
            f"{LOGS}/merge_cams/{{method}}-{{tag}}-{{split}}.log",
        conda:
            CONDA_ENV
        script:
            "../scripts/merge_cams.py"


rule eval_cams:
    input:
        manifest=MANIFEST,
        store=f"{RESULTS}/cams/{{method}}-{{tag}}/{{split}}.h5",
    output:
        json=f"{RESULTS}/cams/{{method}}-{{tag}}/eval_{{split}}.json",
        tsv=report(f"{RESULTS}/cams/{{method}}-{{tag}}/eval_{{split}}.tsv", caption="../report/cam_eval.rst",
                   category="CAMs", subcategory="{method}"),
        plot=report(f"{RESULTS}/cams/{{method}}-{{tag}}/eval_{{split}}_curve.png", caption="../report/cam_curve.rst",
                    category="CAMs", subcategory="{method}"),
    params:
        thresholds=CFG["eval"]["cam_thresholds"],
        confounders=CFG["eval"]["confounders"],
        code=code("eval_cams"),
    threads: 2
    log:
        f"{LOGS}/eval_cams/{{method}}-{{tag}}-{{split}}.log",
    benchmark:
        f"{LOGS}/eval_cams/{{method}}-{{tag}}-{{split}}.benchmark.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/eval_cams.py"
