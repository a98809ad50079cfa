# CLIP rules: pretrain on a captions corpus (when no weights are given), fine-tune on label text, zero-shot checks.
# What they make for this config (tags, paths, input functions): plan/clip.smk.


rule pretrain_clip:
    input:
        [DEMO_DIR] if DEMO else [f"{CAPTIONS}/captions.tsv"] if CAPTIONS else [],
    output:
        checkpoint=CLIP_PRETRAINED,
        metrics=f"{RESULTS}/clip/pretrain-{CLIP_PRETRAIN_TAG}/metrics.json",
    params:
        section=CLIP_SECTION["pretrain"],
        captions=CAPTIONS,
        seed=CFG["seed"],
        device=CFG["device"],
        gpus=CFG["gpus"],
        checkpoint_every=CFG["checkpoint_every"],
        work_dir=f"{WORK}/pretrain_clip/{CLIP_PRETRAIN_TAG}",
        code=code("pretrain_clip"),
    threads: 8
    resources:
        gpu=GPUS,
    log:
        f"{LOGS}/pretrain_clip/{CLIP_PRETRAIN_TAG}.log",
    benchmark:
        PRETRAIN_CLIP_BENCHMARK
    conda:
        CONDA_ENV
    script:
        "../scripts/pretrain_clip.py"


rule finetune_clip:
    input:
        manifest=MANIFEST,
        clip=made_here(BASE_CLIP),
    output:
        checkpoint=CLIP_FINETUNED,
        metrics=f"{RESULTS}/clip/finetune-{CLIP_FINETUNE_TAG}/metrics.json",
    params:
        section=CLIP_SECTION["finetune_settings"],
        class_names=CLIP_SECTION["class_names"],
        clip=BASE_CLIP,
        seed=CFG["seed"],
        device=CFG["device"],
        gpus=CFG["gpus"],
        checkpoint_every=CFG["checkpoint_every"],
        work_dir=f"{WORK}/finetune_clip/{CLIP_FINETUNE_TAG}",
        code=code("finetune_clip"),
    threads: 8
    resources:
        gpu=GPUS,
    log:
        f"{LOGS}/finetune_clip/{CLIP_FINETUNE_TAG}.log",
    benchmark:
        FINETUNE_CLIP_BENCHMARK
    conda:
        CONDA_ENV
    script:
        "../scripts/finetune_clip.py"


rule eval_clip:
    input:
        manifest=MANIFEST,
        clips=made_here(BASE_CLIP, CLIP),
    output:
        json=CLIP_EVAL,
        tsv=report(f"{RESULTS}/clip/eval-{CLIP_EVAL_TAG}/clip_eval.tsv", caption="../report/clip_eval.rst",
                   category="CLIP"),
    params:
        clips={"pretrained": BASE_CLIP, **({"finetuned": CLIP} if CLIP_SECTION["finetune"] else {})},
        prompts=CLIP_SECTION["prompts"],
        class_names=CLIP_SECTION["class_names"],
        device=CFG["device"],
        code=code("eval_clip"),
    threads: 4
    resources:
        gpu=min(GPUS, 1),
    log:
        f"{LOGS}/eval_clip/{CLIP_EVAL_TAG}.log",
    benchmark:
        EVAL_CLIP_BENCHMARK
    conda:
        CONDA_ENV
    script:
        "../scripts/eval_clip.py"
