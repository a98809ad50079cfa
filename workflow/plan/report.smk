# What a user reads after a run: summary.json (the headline figures, provenance, wall times) and the report page
# results/report/index.html built on it, the last step of `all`. `snakemake --report report.html` shows the outputs
# wrapped in report() here and in the stage rule files, with the captions of workflow/report/.
#
# Every stage's plan is read before this one (the Snakefile includes plan/ in pipeline order), so what they register
# (CAM_EVAL, MASK_EVAL, SEG_EVAL, PSEUDO_MASKS, BENCHMARKS) is complete here.
# The plan only (what this config makes: tags, paths, input functions); the rules are in rules/report.smk.

REPORT_DIR = f"{RESULTS}/report"
SUMMARY = f"{REPORT_DIR}/summary.json"
REPORT_HTML = f"{REPORT_DIR}/index.html"
REPORT_SPLIT = "train"  # the pixel-labeled split eval_cams scores (CAM_EVAL's eval_train.json)
ALL_TARGETS.extend([SUMMARY, REPORT_HTML])

def cam_benchmarks() -> dict[str, str]:
    """make_cams and eval_cams keep their benchmarks under wildcard paths (cam.smk): this run's, for the wall times.

    make_cams runs on the train split for every method and on train_aug for the methods refinement reads
    (REFINE_METHODS, plan/refine.smk)."""
    found = {}
    for method in CAM_METHODS:
        splits = [REPORT_SPLIT] + (["train_aug"] if method in REFINE_METHODS else [])
        for split in splits:
            prefix = f"{LOGS}/make_cams/{method}-{CAM_TAGS[method]}-{split}"
            if SHARDED:
                for i in range(1, CAMS["shards"] + 1):
                    found[f"make_cams_{method}_{split}_{i}-of-{CAMS['shards']}"] = (
                        f"{prefix}.{i}-of-{CAMS['shards']}.benchmark.tsv")
            else:
                found[f"make_cams_{method}_{split}"] = f"{prefix}.benchmark.tsv"
        found[f"eval_cams_{method}"] = (
            f"{LOGS}/eval_cams/{method}-{CAM_TAGS[method]}-{CAMS_TAG}-{REPORT_SPLIT}.benchmark.tsv")
    return found


def all_benchmarks() -> dict[str, str]:
    """Every rule's benchmark of this run: those the rule files registered and make_cams / eval_cams."""
    return {**BENCHMARKS, **cam_benchmarks()}


def _folder(path: str) -> str:
    return str(Path(path).parent)


def artifacts() -> dict[str, str]:
    """Every artifact folder of this run (its name carries the tag), in pipeline order."""
    found = {}
    if DEMO:
        found["demo world"] = DEMO_DIR
    found["manifest"] = _folder(MANIFEST)
    if PRETRAIN:
        found["CLIP pretrained"] = _folder(CLIP_PRETRAINED)
    if CLIP_SECTION["finetune"]:
        found["CLIP fine-tuned"] = _folder(CLIP_FINETUNED)
    found["CLIP evaluation"] = _folder(CLIP_EVAL)
    for method in CAM_METHODS:
        found[f"CAM network {method}"] = cam_dir(method)
        found[f"CAM store {method}"] = cams_dir(method)
    if "irn" in REFINERS:  # IRNet's intermediate artifacts
        for method in REFINE_METHODS:
            found[f"IR labels {method}"] = ir_dir(method)
            found[f"IRNet {method}"] = irn_dir(method)
    for key, path in MASK_EVAL.items():
        found[f"pseudo masks {key}"] = _folder(path)
    for key, path in PSEUDO_MASKS.items():
        if _folder(path) not in found.values():
            found[f"pseudo masks {key} (segmentation input)"] = _folder(path)
    for key, path in SEG_EVAL.items():
        found[f"segmentation {key}"] = _folder(path)
    found["report"] = REPORT_DIR
    return found


def provenance(wildcards) -> dict:
    """What summary.json records of the run: dataset, artifact folders, the resolved config (the summary stage adds
    the code version: as a parameter here, any library edit would rerun the summary)."""
    dataset = {"root": DATA_ROOT, "data_tag": DATA_TAG, "demo_world_tag": DEMO_TAG if DEMO else None,
               "manifest": MANIFEST}
    # artifacts as [name, folder] pairs: summary.json is written with sorted keys, and pipeline order reads better
    return {"dataset": dataset, "artifacts": [list(kv) for kv in artifacts().items()], "config": CFG}


