# CAM stage: train cam / puzzlecam / clims, multi-scale CAM stores (optionally sharded), evaluation.
from clims_core.methods.clims_settings import resolve_clims_section

CAM = CFG["cam"]
CAMS = CFG["cams"]
CAM_METHODS = CAM["methods"]
CLIMS_SECTION = resolve_clims_section(CAM["clims"], CFG["data"]["stuff_classes"], CFG["eval"]["confounders"],
                                      CFG["data"]["classes"])
_BASE_SECTION = [CAM["backbone"], TRUNK_WEIGHTS_TAG, CAM["train"], CFG["seed"]]  # TRUNK_*: rules/trunk.smk
CAM_TAGS = {
    "cam": tag(_BASE_SECTION, DATA_TAG),
    "puzzlecam": tag(_BASE_SECTION + [CAM["puzzlecam"]], DATA_TAG),
}
# CLIMS's prompts are in CLIMS_SECTION (cam.clims); clip.prompts and clip.class_names are eval_clip's and
# fine-tuning's, which reach CLIMS through CLIP_TAG.
CAM_TAGS["clims"] = tag([CLIMS_SECTION], CAM_TAGS["cam"], CLIP_TAG, DATA_TAG)
CAMS_TAG = tag(CAMS)


def cam_dir(method: str) -> str:
    return f"{RESULTS}/cam/{method}-{CAM_TAGS[method]}"


def cams_dir(method: str) -> str:
    return f"{RESULTS}/cams/{method}-{CAM_TAGS[method]}-{CAMS_TAG}"


CAM_EVAL = {method: f"{cams_dir(method)}/eval_train.json" for method in CAM_METHODS}
ALL_TARGETS.extend(CAM_EVAL.values())


def train_cam_inputs(wildcards) -> dict[str, str]:
    inputs = {"manifest": MANIFEST, **TRUNK_INPUT}
    if wildcards.method == "clims":
        inputs["init"] = f"{cam_dir('cam')}/model.pt"
        inputs["clip"] = made_here(CLIP)
    return inputs


def train_cam_section(wildcards) -> dict:
    """The part of ``cam`` a method's training reads (``puzzlecam``'s knobs only for puzzlecam)."""
    keys = ["backbone", "backbone_weights", "train"] + (["puzzlecam"] if wildcards.method == "puzzlecam" else [])
    return {key: TRUNK_WEIGHTS if key == "backbone_weights" else CAM[key] for key in keys}


for _method in CAM_METHODS:
    benchmark(f"train_cam_{_method}", CAM_TAGS[_method])


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
        code=code("train_cam"),
    threads: 8
    resources:
        gpu=GPUS,
    log:
        f"{LOGS}/train_cam/{{method}}-{{tag}}.log",
    benchmark:
        f"{LOGS}/train_cam_{{method}}/{{tag}}.benchmark.tsv"
    script:
        "../scripts/train_cam.py"


# One make_cams job per split, or with cams.shards > 1 one per shard ('<i>-of-<n>', Snakemake's scatteritem form)
# joined by merge_cams.
SHARDED = CAMS["shards"] > 1
STORE = f"{RESULTS}/cams/{{method}}-{{tag}}-{CAMS_TAG}/{{split}}.h5"
SHARD_STORE = f"{RESULTS}/cams/{{method}}-{{tag}}-{CAMS_TAG}/shards/{{split}}.{{scatteritem}}.h5"
SHARD_SUFFIX = ".{scatteritem}" if SHARDED else ""


def make_cams_settings(wildcards) -> dict:
    shard = int(wildcards.scatteritem.split("-of-")[0]) - 1 if SHARDED else 0
    return {"split": wildcards.split, "scales": CAMS["scales"], "flip": CAMS["flip"], "resize": CAMS["resize"],
            "shard": shard, "shards": CAMS["shards"], "device": CFG["device"], "precision": CFG["precision"],
            "workers": CAMS["workers"]}


rule make_cams:
    input:
        manifest=MANIFEST,
        checkpoint=f"{RESULTS}/cam/{{method}}-{{tag}}/model.pt",
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
    script:
        "../scripts/make_cams.py"


if SHARDED:

    def shard_stores(wildcards) -> list[str]:
        n = CAMS["shards"]
        return [SHARD_STORE.format(method=wildcards.method, tag=wildcards.tag, split=wildcards.split,
                                   scatteritem=f"{i}-of-{n}") for i in range(1, n + 1)]

    rule merge_cams:
        input:
            shard_stores,
        output:
            STORE,
        params:
            code=code("merge_cams"),
        log:
            f"{LOGS}/merge_cams/{{method}}-{{tag}}-{{split}}.log",
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
    script:
        "../scripts/eval_cams.py"
