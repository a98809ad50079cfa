# CAM stage: train cam / puzzlecam / clims, multi-scale CAM stores (optionally sharded), evaluation.
from clims_core.stages.clims_settings import resolve_clims_section

CAM = CFG["cam"]
CAMS = CFG["cams"]
CAM_METHODS = CAM["methods"]
CLIMS_SECTION = resolve_clims_section(CAM["clims"], CFG["data"]["stuff_classes"], CFG["eval"]["confounders"])
_BASE_SECTION = [CAM["backbone"], CAM["backbone_weights"], CAM["train"], CFG["seed"]]
CAM_TAGS = {
    "cam": tag(_BASE_SECTION, DATA_TAG),
    "puzzlecam": tag(_BASE_SECTION + [CAM["puzzlecam"]], DATA_TAG),
}
CAM_TAGS["clims"] = tag([CLIMS_SECTION, CLIP_SECTION["prompts"], CLIP_SECTION["class_names"]], CAM_TAGS["cam"],
                        CLIP_TAG, DATA_TAG)
CAMS_TAG = tag(CAMS)


def cam_dir(method: str) -> str:
    return f"{RESULTS}/cam/{method}-{CAM_TAGS[method]}"


def cams_dir(method: str) -> str:
    return f"{RESULTS}/cams/{method}-{CAM_TAGS[method]}-{CAMS_TAG}"


def cam_store(method: str, split: str) -> str:
    return f"{cams_dir(method)}/{split}.h5"


CAM_EVAL = {method: f"{cams_dir(method)}/eval_train.json" for method in CAM_METHODS}
ALL_TARGETS.extend(CAM_EVAL.values())


def train_cam_inputs(wildcards) -> dict[str, str]:
    inputs = {"manifest": MANIFEST}
    if wildcards.method == "clims":
        inputs["init"] = f"{cam_dir('cam')}/model.pt"
        if CLIP[1] and CLIP[1].startswith(RESULTS):
            inputs["clip"] = CLIP[1]
    return inputs


for _method in CAM_METHODS:
    benchmark(f"train_cam_{_method}", CAM_TAGS[_method])


rule train_cam:
    input:
        unpack(train_cam_inputs),
    output:
        checkpoint=f"{RESULTS}/cam/{{method}}-{{tag}}/model.pt",
        metrics=f"{RESULTS}/cam/{{method}}-{{tag}}/metrics.json",
    params:
        cam=CAM,
        clims=CLIMS_SECTION,
        clip_section=CLIP_SECTION,
        clip=CLIP,
        seed=CFG["seed"],
        device=CFG["device"],
        code=code("train_cam"),
    threads: 8
    log:
        f"{LOGS}/train_cam/{{method}}-{{tag}}.log",
    benchmark:
        f"{LOGS}/train_cam_{{method}}/{{tag}}.benchmark.tsv"
    script:
        "../scripts/train_cam.py"


def make_cams_settings(wildcards, shard: int = 0) -> dict:
    return {"split": wildcards.split, "scales": CAMS["scales"], "flip": CAMS["flip"], "shard": shard,
            "shards": CAMS["shards"], "device": CFG["device"], "workers": CAMS["workers"]}


if CAMS["shards"] == 1:

    rule make_cams:
        input:
            manifest=MANIFEST,
            checkpoint=f"{RESULTS}/cam/{{method}}-{{tag}}/model.pt",
        output:
            f"{RESULTS}/cams/{{method}}-{{tag}}-{CAMS_TAG}/{{split}}.h5",
        params:
            settings=make_cams_settings,
            code=code("make_cams"),
        threads: 8
        log:
            f"{LOGS}/make_cams/{{method}}-{{tag}}-{{split}}.log",
        benchmark:
            f"{LOGS}/make_cams/{{method}}-{{tag}}-{{split}}.benchmark.tsv"
        script:
            "../scripts/make_cams.py"

else:

    rule make_cams_shard:
        input:
            manifest=MANIFEST,
            checkpoint=f"{RESULTS}/cam/{{method}}-{{tag}}/model.pt",
        output:
            f"{RESULTS}/cams/{{method}}-{{tag}}-{CAMS_TAG}/shards/{{split}}.{{scatteritem}}.h5",
        params:
            settings=lambda wildcards: make_cams_settings(wildcards, int(wildcards.scatteritem.split("-of-")[0]) - 1),
            code=code("make_cams"),
        threads: 8
        log:
            f"{LOGS}/make_cams/{{method}}-{{tag}}-{{split}}.{{scatteritem}}.log",
        script:
            "../scripts/make_cams.py"

    def shard_stores(wildcards) -> list[str]:
        """The shard stores of one split, named as Snakemake's scatteritem ('<i>-of-<n>')."""
        n = CAMS["shards"]
        folder = f"{RESULTS}/cams/{wildcards.method}-{wildcards.tag}-{CAMS_TAG}/shards"
        return [f"{folder}/{wildcards.split}.{i}-of-{n}.h5" for i in range(1, n + 1)]

    rule merge_cams:
        input:
            shard_stores,
        output:
            f"{RESULTS}/cams/{{method}}-{{tag}}-{CAMS_TAG}/{{split}}.h5",
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
        tsv=f"{RESULTS}/cams/{{method}}-{{tag}}/eval_{{split}}.tsv",
        plot=f"{RESULTS}/cams/{{method}}-{{tag}}/eval_{{split}}_curve.png",
    params:
        thresholds=CFG["eval"]["cam_thresholds"],
        confounders=CFG["eval"]["confounders"],
        code=code("eval_cams"),
    threads: 2
    log:
        f"{LOGS}/eval_cams/{{method}}-{{tag}}-{{split}}.log",
    script:
        "../scripts/eval_cams.py"
