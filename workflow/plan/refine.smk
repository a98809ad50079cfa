# Refinement: the train_aug CAMs of refine.methods -> pseudo masks, by IRNet (IR labels, boundary network, random
# walk) and by denseCRF alone; both scored on the pixel-labeled train split.
# The plan only (what this config makes: tags, paths, input functions); the rules are in rules/refine.smk.

from clims_core.refine.thresholds import CRF_SEARCH_KEYS

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
# 'search': crf_plane runs the CRF at each of search_planes on the pixel-labeled train split and crf_masks reads its
# best plane; the search keys enter the tags only then.
_CRF_SEARCH = REFINE["crf"]["bg_thres"] == "search"
_CRF_MASKS = {k: v for k, v in REFINE["crf"].items() if _CRF_SEARCH or k not in CRF_SEARCH_KEYS}
_WALK_AUTO = "auto" in (REFINE["random_walk"]["bg_thres"], REFINE["random_walk"]["alpha"])
_EVAL_SECTION = [CFG["eval"]["cam_thresholds"]]
# what cam_to_ir_label reads: bg_precision only when bg_thres is auto
_IR_LABEL = {k: v for k, v in REFINE["ir_label"].items()
             if k != "bg_precision" or REFINE["ir_label"]["bg_thres"] == "auto"}
IR_TAGS = {m: tag([_CRF, _IR_LABEL, *(_EVAL_SECTION if _IR_AUTO else [])], CAM_TAGS[m], CAMS_TAG)
           for m in REFINE_METHODS}
IRN_TAGS = {m: tag(_IRN_SECTION, IR_TAGS[m], *([CAM_TAGS[m]] if _IRN_TRUNK == "cam" else [])) for m in REFINE_METHODS}
MASK_TAGS = {
    "irn": {m: tag([REFINE["random_walk"], *_EVAL_SECTION] if _WALK_AUTO else REFINE["random_walk"], IRN_TAGS[m],
                   CAM_TAGS[m], CAMS_TAG) for m in REFINE_METHODS},
    "crf": {m: tag([_CRF, _CRF_MASKS, *(_EVAL_SECTION if _CRF_AUTO else [])], CAM_TAGS[m], CAMS_TAG)
            for m in REFINE_METHODS},
}
# the plane depends on the CRF and the search, not on which split crf_masks then refines
CRF_PLANE_TAGS = {m: tag([_CRF, {k: v for k, v in _CRF_MASKS.items() if k != "split"}], CAM_TAGS[m], CAMS_TAG)
                  for m in REFINE_METHODS}


def cam_store(method: str) -> str:
    """The CAM store the refiners read: train_aug (make_cams makes any split)."""
    return f"{cams_dir(method)}/train_aug.h5"


def ir_dir(method: str) -> str:
    return f"{RESULTS}/ir_labels/{method}-{IR_TAGS[method]}"


def irn_dir(method: str) -> str:
    return f"{RESULTS}/irn/{method}-{IRN_TAGS[method]}"


def crf_plane_json(method: str) -> str:
    return f"{RESULTS}/crf_plane/{method}-{CRF_PLANE_TAGS[method]}/plane.json"


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
    if "crf" in REFINERS and _CRF_SEARCH:
        benchmark(f"crf_plane_{_method}", CRF_PLANE_TAGS[_method])
ALL_TARGETS.extend(MASK_EVAL.values())

# One job per folder, or with refine.shards > 1 one per shard ('<i>-of-<n>'), each writing its PNGs into the folder
# and a part of the index; merge_masks joins the parts into index.json.
SHARDED_REFINE = REFINE_SHARDS > 1

scattergather:
    refine=REFINE_SHARDS,


_OUT = "shards/{scatteritem}.json" if SHARDED_REFINE else "index.json"
_SHARD_SUFFIX = ".{scatteritem}" if SHARDED_REFINE else ""


def cam_eval_input(automatic: bool):
    """The method's eval_cams JSON as an input where 'auto' thresholds read it, else nothing."""
    return lambda wc: {"cam_eval": CAM_EVAL[wc.method]} if automatic else {}


def crf_masks_inputs(wildcards) -> dict[str, str]:
    """What crf_masks reads besides the CAMs: eval_cams' JSON for 'auto', crf_plane's for 'search'."""
    if _CRF_AUTO:
        return {"cam_eval": CAM_EVAL[wildcards.method]}
    return {"plane": crf_plane_json(wildcards.method)} if _CRF_SEARCH else {}


def train_irn_inputs(wildcards) -> dict[str, str]:
    inputs = {"manifest": MANIFEST, "ir_labels": f"{ir_dir(wildcards.method)}/index.json"}
    if _IRN_TRUNK == "cam":
        inputs["cam_checkpoint"] = f"{cam_dir(wildcards.method)}/model.pt"
    else:
        inputs.update(TRUNK_INPUT)
    return inputs


def mask_parts(wildcards) -> list[str]:
    """merge_masks's inputs: every shard's part of the folder's index."""
    return gather.refine(f"{RESULTS}/{{folder}}/shards/{{scatteritem}}.json", folder=wildcards.folder)
