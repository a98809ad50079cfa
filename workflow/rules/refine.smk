# Refinement rules: CAMs -> pseudo masks by IRNet (IR labels, boundary network, random walk) and by denseCRF.
# What they make for this config (tags, paths, input functions): plan/refine.smk.


rule cam_to_ir_label:
    input:
        unpack(cam_eval_input(_IR_AUTO)),
        manifest=MANIFEST,
        store=lambda wc: cam_store(wc.method),
    output:
        f"{RESULTS}/ir_labels/{{method}}-{{tag}}/{_OUT}",
    params:
        crf=_CRF,
        ir_label=_IR_LABEL,
        shard=scatter_position,
        code=code("cam_to_ir_label"),
    threads: 8
    log:
        f"{LOGS}/cam_to_ir_label/{{method}}-{{tag}}{_SHARD_SUFFIX}.log",
    benchmark:
        f"{LOGS}/cam_to_ir_label_{{method}}/{{tag}}{_SHARD_SUFFIX}.benchmark.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/cam_to_ir_label.py"


rule train_irn:
    input:
        unpack(train_irn_inputs),
    output:
        checkpoint=f"{RESULTS}/irn/{{method}}-{{tag}}/model.pt",
        metrics=f"{RESULTS}/irn/{{method}}-{{tag}}/metrics.json",
    params:
        # Only what training reads: a random-walk or CRF setting, or another CAM method's knobs, rerun nothing here.
        refine={"irn": REFINE["irn"]},
        cam={"backbone": CAM["backbone"], "backbone_weights": TRUNK_WEIGHTS},
        seed=CFG["seed"],
        device=CFG["device"],
        precision=CFG["precision"],
        gpus=CFG["gpus"],
        checkpoint_every=CFG["checkpoint_every"],
        work_dir=lambda wc: f"{WORK}/train_irn/{wc.method}-{wc.tag}",
        code=code("train_irn"),
    threads: 8
    resources:
        gpu=GPUS,
    log:
        f"{LOGS}/train_irn/{{method}}-{{tag}}.log",
    benchmark:
        f"{LOGS}/train_irn_{{method}}/{{tag}}.benchmark.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/train_irn.py"


rule make_pseudo_masks:
    input:
        unpack(cam_eval_input(_WALK_AUTO)),
        manifest=MANIFEST,
        store=lambda wc: cam_store(wc.method),
        irn=lambda wc: f"{irn_dir(wc.method)}/model.pt",
    output:
        f"{RESULTS}/masks/{{method}}-irn-{{tag}}/{_OUT}",
    params:
        random_walk=REFINE["random_walk"],
        shard=scatter_position,
        device=CFG["device"],
        precision=CFG["precision"],
        code=code("make_pseudo_masks"),
    threads: 8
    resources:
        gpu=min(GPUS, 1),
    log:
        f"{LOGS}/make_pseudo_masks/{{method}}-{{tag}}{_SHARD_SUFFIX}.log",
    benchmark:
        f"{LOGS}/make_pseudo_masks_{{method}}/{{tag}}{_SHARD_SUFFIX}.benchmark.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/make_pseudo_masks.py"


rule crf_plane:
    input:
        manifest=MANIFEST,
        store=lambda wc: cam_store(wc.method),
    output:
        f"{RESULTS}/crf_plane/{{method}}-{{tag}}/plane.json",
    params:
        crf=_CRF,
        refiner={k: REFINE["crf"][k] for k in ("unary", *CRF_SEARCH_KEYS)},
        code=code("crf_plane"),
    threads: 8
    log:
        f"{LOGS}/crf_plane/{{method}}-{{tag}}.log",
    benchmark:
        f"{LOGS}/crf_plane_{{method}}/{{tag}}.benchmark.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/crf_plane.py"


rule crf_masks:
    input:
        unpack(crf_masks_inputs),
        manifest=MANIFEST,
        store=lambda wc: cam_store(wc.method),
    output:
        f"{RESULTS}/masks/{{method}}-crf-{{tag}}/{_OUT}",
    params:
        crf=_CRF,
        refiner=REFINE["crf"],
        shard=scatter_position,
        code=code("crf_masks"),
    threads: 8
    log:
        f"{LOGS}/crf_masks/{{method}}-{{tag}}{_SHARD_SUFFIX}.log",
    benchmark:
        f"{LOGS}/crf_masks_{{method}}/{{tag}}{_SHARD_SUFFIX}.benchmark.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/crf_masks.py"


if SHARDED_REFINE:

    rule merge_masks:
        localrule: True  # a few small files joined: no cluster job
        input:
            mask_parts,
        output:
            f"{RESULTS}/{{folder}}/index.json",
        params:
            code=code("merge_masks"),
        wildcard_constraints:
            folder=r"(ir_labels|masks)/[A-Za-z0-9]+(-(irn|crf))?-[0-9a-f]{8}",
        log:
            f"{LOGS}/merge_masks/{{folder}}.log",
        conda:
            CONDA_ENV
        script:
            "../scripts/merge_masks.py"


rule eval_masks:
    input:
        manifest=MANIFEST,
        index=f"{RESULTS}/masks/{{method}}-{{refiner}}-{{tag}}/index.json",
    output:
        json=f"{RESULTS}/masks/{{method}}-{{refiner}}-{{tag}}/eval_train.json",
        tsv=f"{RESULTS}/masks/{{method}}-{{refiner}}-{{tag}}/eval_train.tsv",
    params:
        confounders=CFG["eval"]["confounders"],
        code=code("eval_masks"),
    wildcard_constraints:
        refiner="irn|crf",
    threads: 2
    log:
        f"{LOGS}/eval_masks/{{method}}-{{refiner}}-{{tag}}.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/eval_masks.py"
