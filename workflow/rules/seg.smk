# Segmentation rules: CCT and DeepLab trained on pseudo masks, evaluated on val, gathered into one table.
# What they make for this config (tags, paths, input functions): plan/seg.smk.


rule train_seg:
    input:
        unpack(train_seg_inputs),
    output:
        checkpoint=f"{RESULTS}/seg/{{run}}-{{tag}}/model.pt",
        metrics=f"{RESULTS}/seg/{{run}}-{{tag}}/metrics.json",
    params:
        seg={key: SEG[key] for key in ("init", "output_stride", "cct", "train")},
        **_TRAIN_PARAMS,
        work_dir=lambda wc: f"{WORK}/train_seg/{wc.run}-{wc.tag}",
        code=code("train_seg"),
    wildcard_constraints:
        run="|".join(CCT_RUNS) or "no-cct-run",
    threads: 8
    resources:
        gpu=GPUS,
    log:
        f"{LOGS}/train_seg/{{run}}-{{tag}}.log",
    benchmark:
        f"{LOGS}/train_seg_{{run}}/{{tag}}.benchmark.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/train_seg.py"


rule train_deeplab:
    input:
        unpack(train_seg_inputs),
    output:
        checkpoint=f"{RESULTS}/seg/{{run}}-{{tag}}/model.pt",
        metrics=f"{RESULTS}/seg/{{run}}-{{tag}}/metrics.json",
    params:
        seg={key: SEG[key] for key in ("init", "output_stride", "deeplab")},
        **_TRAIN_PARAMS,
        work_dir=lambda wc: f"{WORK}/train_deeplab/{wc.run}-{wc.tag}",
        code=code("train_deeplab"),
    wildcard_constraints:
        run="|".join(DEEPLAB_RUNS) or "no-deeplab-run",
    threads: 8
    resources:
        gpu=GPUS,
    log:
        f"{LOGS}/train_deeplab/{{run}}-{{tag}}.log",
    benchmark:
        f"{LOGS}/train_deeplab_{{run}}/{{tag}}.benchmark.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/train_seg.py"  # the same adapter: it runs the stage its rule is named after


rule eval_seg:
    input:
        manifest=MANIFEST,
        checkpoint=f"{RESULTS}/seg/{{run}}-{{tag}}/model.pt",
    output:
        json=f"{RESULTS}/seg/{{run}}-{{tag}}/eval-{{evaltag}}.json",
        tsv=f"{RESULTS}/seg/{{run}}-{{tag}}/eval-{{evaltag}}.tsv",
        examples=directory(f"{RESULTS}/seg/{{run}}-{{tag}}/examples-{{evaltag}}"),  # the report's segmented images
    params:
        eval=SEG["eval"],
        densecrf=_EVAL_CRF,
        device=CFG["device"],
        precision=CFG["precision"],
        code=code("eval_seg"),
    wildcard_constraints:
        run="|".join(SEG_RUNS),
        evaltag=SEG_EVAL_TAG,
    threads: 2
    resources:
        gpu=min(GPUS, 1),
    log:
        f"{LOGS}/eval_seg/{{run}}-{{tag}}-{{evaltag}}.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/eval_seg.py"


rule seg_table:
    localrule: True  # a few small files joined: no cluster job
    input:
        list(SEG_EVAL.values()),
    output:
        md=SEG_TABLE["md"],
        tsv=SEG_TABLE["tsv"],
    params:
        runs={run: m for run, (_, m) in SEG_RUNS.items()},
        evals=dict(SEG_EVAL),
        code=code("seg_table"),
    log:
        f"{LOGS}/seg_table/table1.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/seg_table.py"
