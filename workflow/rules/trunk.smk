# Trunk rule: pretrain the ResNet trunk on the captions corpus when no ImageNet weights are given.
# What they make for this config (tags, paths, input functions): plan/trunk.smk.


rule pretrain_trunk:
    input:
        [DEMO_DIR] if DEMO else [f"{CAPTIONS}/captions.tsv"] if CAPTIONS else [],
    output:
        weights=TRUNK_PRETRAINED,
        metrics=TRUNK_METRICS,
    params:
        section=_PRETRAIN_TRUNK,
        **_TRUNK_PARAMS,
        captions=CAPTIONS,
        seed=CFG["seed"],
        device=CFG["device"],
        precision=CFG["precision"],
        gpus=CFG["gpus"],
        checkpoint_every=CFG["checkpoint_every"],
        work_dir=f"{WORK}/pretrain_trunk/{TRUNK_PRETRAIN_TAG}",
        code=code("pretrain_trunk"),
    threads: 8
    resources:
        gpu=GPUS,
    log:
        f"{LOGS}/pretrain_trunk/{TRUNK_PRETRAIN_TAG}.log",
    benchmark:
        PRETRAIN_TRUNK_BENCHMARK
    conda:
        CONDA_ENV
    script:
        "../scripts/pretrain_trunk.py"
