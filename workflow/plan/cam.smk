# CAM stage: train cam / puzzlecam / clims, multi-scale CAM stores (optionally sharded), evaluation.
# The plan only (what this config makes: tags, paths, input functions); the rules are in rules/cam.smk.
from clims_core.methods.clims_settings import resolve_clims_section

CAM = CFG["cam"]
CAMS = CFG["cams"]
CAM_METHODS = CAM["methods"]
CLIMS_SECTION = resolve_clims_section(CAM["clims"], CFG["data"]["stuff_classes"], CFG["eval"]["confounders"],
                                      CFG["data"]["classes"])
_BASE_SECTION = [CAM["backbone"], TRUNK_WEIGHTS_TAG, CAM["train"], CFG["seed"]]  # TRUNK_*: plan/trunk.smk
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


# One make_cams job per split, or with cams.shards > 1 one per shard ('<i>-of-<n>', Snakemake's scatteritem form)
# joined by merge_cams.
SHARDED = CAMS["shards"] > 1

scattergather:
    cams=CAMS["shards"],


STORE = f"{RESULTS}/cams/{{method}}-{{tag}}-{CAMS_TAG}/{{split}}.h5"
SHARD_STORE = f"{RESULTS}/cams/{{method}}-{{tag}}-{CAMS_TAG}/shards/{{split}}.{{scatteritem}}.h5"
SHARD_SUFFIX = ".{scatteritem}" if SHARDED else ""


def make_cams_settings(wildcards) -> dict:
    # key order kept as before: Snakemake's params trigger compares the dict's repr
    return {"split": wildcards.split, "scales": CAMS["scales"], "flip": CAMS["flip"], "resize": CAMS["resize"],
            **scatter_position(wildcards), "device": CFG["device"], "precision": CFG["precision"],
            "workers": CAMS["workers"]}


def make_cams_inputs(wildcards) -> dict[str, str]:
    """The network, and for train_aug (with cams.reuse_train) the train split's finished store, whose images
    (VOC's train lies inside train_aug) make_cams copies instead of computing again."""
    inputs = {"manifest": MANIFEST, "checkpoint": f"{RESULTS}/cam/{wildcards.method}-{wildcards.tag}/model.pt"}
    if wildcards.split == "train_aug" and CAMS["reuse_train"]:
        inputs["reuse"] = STORE.format(method=wildcards.method, tag=wildcards.tag, split="train")
    return inputs


def shard_stores(wildcards) -> list[str]:
    """merge_cams's inputs: every shard store of the split."""
    return gather.cams(SHARD_STORE, method=wildcards.method, tag=wildcards.tag, split=wildcards.split)
