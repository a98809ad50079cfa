# Refinement: the train_aug CAMs of refine.methods -> pseudo masks, by IRNet (IR labels, boundary network, random
# walk) and by denseCRF alone; both scored on the pixel-labeled train split.

REFINE = CFG["refine"]
REFINE_METHODS = REFINE["methods"]
REFINERS = REFINE["refiners"]
REFINE_SHARDS = REFINE["shards"]
_CRF = REFINE["densecrf"]
_IRN_TRUNK = REFINE["irn"]["trunk"]
if _IRN_TRUNK == "auto":  # as clims_core.stages.train_irn.resolve_trunk (not imported: it would load torch here)
    _IRN_TRUNK = "imagenet" if TRUNK_WEIGHTS else "cam"
_IRN_SECTION = [REFINE["irn"], CFG["seed"]]
if _IRN_TRUNK == "imagenet":
    _IRN_SECTION += [CAM["backbone"], TRUNK_WEIGHTS_TAG]
# 'auto' thresholds are read from each method's eval_cams JSON (clims_core/refine/thresholds.py): the tags then
# also cover the evaluation's thresholds, and the rules take the JSON as an input.
_IR_AUTO = "auto" in (REFINE["ir_label"]["fg_thres"], REFINE["ir_label"]["bg_thres"])
_CRF_AUTO = REFINE["crf"]["bg_thres"] == "auto"
_EVAL_SECTION = [CFG["eval"]["cam_thresholds"]]
# what cam_to_ir_label reads: bg_precision only when bg_thres is auto
_IR_LABEL = {k: v for k, v in REFINE["ir_label"].items()
             if k != "bg_precision" or REFINE["ir_label"]["bg_thres"] == "auto"}
IR_TAGS = {m: tag([_CRF, _IR_LABEL, *(_EVAL_SECTION if _IR_AUTO else [])], CAM_TAGS[m], CAMS_TAG)
           for m in REFINE_METHODS}
IRN_TAGS = {m: tag(_IRN_SECTION, IR_TAGS[m], *([CAM_TAGS[m]] if _IRN_TRUNK == "cam" else [])) for m in REFINE_METHODS}
MASK_TAGS = {
    "irn": {m: tag(REFINE["random_walk"], IRN_TAGS[m], CAM_TAGS[m], CAMS_TAG) for m in REFINE_METHODS},
    "crf": {m: tag([_CRF, REFINE["crf"], *(_EVAL_SECTION if _CRF_AUTO else [])], CAM_TAGS[m], CAMS_TAG)
            for m in REFINE_METHODS},
}


def cam_store(method: str) -> str:
    """The CAM store the refiners read: train_aug (make_cams makes any split)."""
    return f"{cams_dir(method)}/train_aug.h5"


def ir_dir(method: str) -> str:
    return f"{RESULTS}/ir_labels/{method}-{IR_TAGS[method]}"


def irn_dir(method: str) -> str:
    return f"{RESULTS}/irn/{method}-{IRN_TAGS[method]}"


def mask_dir(method: str, refiner: str) -> str:
    return f"{RESULTS}/masks/{method}-{refiner}-{MASK_TAGS[refiner][method]}"


for _method in REFINE_METHODS:
    for _refiner in REFINERS:
        MASK_EVAL[f"{_method}/{_refiner}"] = f"{mask_dir(_method, _refiner)}/eval_train.json"
    if CFG["seg"]["pseudo_refiner"] in REFINERS:
        PSEUDO_MASKS[_method] = f"{mask_dir(_method, CFG['seg']['pseudo_refiner'])}/index.json"
    if "irn" in REFINERS:
        benchmark(f"train_irn_{_method}", IRN_TAGS[_method])
    if REFINE_SHARDS == 1:  # sharded jobs have one benchmark each; the summary times whole rules only
        if "irn" in REFINERS:
            benchmark(f"cam_to_ir_label_{_method}", IR_TAGS[_method])
            benchmark(f"make_pseudo_masks_{_method}", MASK_TAGS["irn"][_method])
        if "crf" in REFINERS:
            benchmark(f"crf_masks_{_method}", MASK_TAGS["crf"][_method])
ALL_TARGETS.extend(MASK_EVAL.values())

# One job per folder, or with refine.shards > 1 one per shard ('<i>-of-<n>'), each writing its PNGs into the folder
# and a part of the index; merge_masks joins the parts into index.json.
SHARDED_REFINE = REFINE_SHARDS > 1
_OUT = "shards/{scatteritem}.json" if SHARDED_REFINE else "index.json"
_SHARD_SUFFIX = ".{scatteritem}" if SHARDED_REFINE else ""


def shard_settings(wildcards) -> dict:
    shard = int(wildcards.scatteritem.split("-of-")[0]) - 1 if SHARDED_REFINE else 0
    return {"shard": shard, "shards": REFINE_SHARDS}


def cam_eval_input(automatic: bool):
    """The method's eval_cams JSON as an input where 'auto' thresholds read it, else nothing."""
    return lambda wc: {"cam_eval": CAM_EVAL[wc.method]} if automatic else {}


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
        shard=shard_settings,
        code=code("cam_to_ir_label"),
    threads: 8
    log:
        f"{LOGS}/cam_to_ir_label/{{method}}-{{tag}}{_SHARD_SUFFIX}.log",
    benchmark:
        f"{LOGS}/cam_to_ir_label_{{method}}/{{tag}}{_SHARD_SUFFIX}.benchmark.tsv"
    script:
        "../scripts/cam_to_ir_label.py"


def train_irn_inputs(wildcards) -> dict[str, str]:
    inputs = {"manifest": MANIFEST, "ir_labels": f"{ir_dir(wildcards.method)}/index.json"}
    if _IRN_TRUNK == "cam":
        inputs["cam_checkpoint"] = f"{cam_dir(wildcards.method)}/model.pt"
    else:
        inputs.update(TRUNK_INPUT)
    return inputs


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
    script:
        "../scripts/train_irn.py"


rule make_pseudo_masks:
    input:
        manifest=MANIFEST,
        store=lambda wc: cam_store(wc.method),
        irn=lambda wc: f"{irn_dir(wc.method)}/model.pt",
    output:
        f"{RESULTS}/masks/{{method}}-irn-{{tag}}/{_OUT}",
    params:
        random_walk=REFINE["random_walk"],
        shard=shard_settings,
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
    script:
        "../scripts/make_pseudo_masks.py"


rule crf_masks:
    input:
        unpack(cam_eval_input(_CRF_AUTO)),
        manifest=MANIFEST,
        store=lambda wc: cam_store(wc.method),
    output:
        f"{RESULTS}/masks/{{method}}-crf-{{tag}}/{_OUT}",
    params:
        crf=_CRF,
        refiner=REFINE["crf"],
        shard=shard_settings,
        code=code("crf_masks"),
    threads: 8
    log:
        f"{LOGS}/crf_masks/{{method}}-{{tag}}{_SHARD_SUFFIX}.log",
    benchmark:
        f"{LOGS}/crf_masks_{{method}}/{{tag}}{_SHARD_SUFFIX}.benchmark.tsv"
    script:
        "../scripts/crf_masks.py"


if SHARDED_REFINE:

    def mask_parts(wildcards) -> list[str]:
        return [f"{RESULTS}/{wildcards.folder}/shards/{i}-of-{REFINE_SHARDS}.json" for i in range(1, REFINE_SHARDS + 1)]

    rule merge_masks:
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
    script:
        "../scripts/eval_masks.py"
