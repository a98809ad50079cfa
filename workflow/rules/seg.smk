# Semi-supervised segmentation (CCT): cct_labeled and cct_weak_<method> on the pixel-labeled train split plus the
# image-level images, evaluated on val, gathered into the seed paper's Table 1.

SEG = CFG["seg"]
_no_masks = [m for m in SEG["pseudo_methods"] if m not in PSEUDO_MASKS]
if _no_masks:
    raise WorkflowError(
        f"config key 'seg.pseudo_methods': no refined ({SEG['pseudo_refiner']}) pseudo masks for {_no_masks}; this "
        f"config makes them for {sorted(PSEUDO_MASKS) or 'no method'} (refine.methods with the "
        f"{SEG['pseudo_refiner']} refiner in refine.refiners): add them there or remove them from seg.pseudo_methods")
# run name -> CAM method of its pseudo masks (None: no pseudo masks), in Table 1 order
SEG_RUNS = {"cct_labeled": None, **{f"cct_weak_{m}": m for m in SEG["pseudo_methods"]}}
_SEG_SECTION = [{k: v for k, v in SEG.items() if k not in ("pseudo_methods", "pseudo_refiner", "eval")},
                CAM["backbone"], TRUNK_WEIGHTS_TAG if SEG["init"] == "imagenet" else None, CFG["seed"]]
_SEG_INIT = [CAM_TAGS["cam"]] if SEG["init"] == "cam" else []
SEG_TAGS = {run: tag(_SEG_SECTION + [run], DATA_TAG, *_SEG_INIT, *([PSEUDO_MASKS[m]] if m else []))
            for run, m in SEG_RUNS.items()}
SEG_EVAL_TAG = tag(SEG["eval"])


def seg_dir(run: str) -> str:
    return f"{RESULTS}/seg/{run}-{SEG_TAGS[run]}"


SEG_EVAL.update({run: f"{seg_dir(run)}/eval-{SEG_EVAL_TAG}.json" for run in SEG_RUNS})
SEG_TABLE = {"md": f"{RESULTS}/seg/table1.md", "tsv": f"{RESULTS}/seg/table1.tsv"}
ALL_TARGETS.extend([*SEG_EVAL.values(), *SEG_TABLE.values()])

for _run in SEG_RUNS:
    benchmark(f"train_seg_{_run}", SEG_TAGS[_run])


def train_seg_inputs(wildcards) -> dict[str, str]:
    inputs = {"manifest": MANIFEST}
    if SEG["init"] == "cam":
        inputs["init"] = f"{cam_dir('cam')}/model.pt"
    if SEG["init"] == "imagenet":
        inputs.update(TRUNK_INPUT)
    pseudo_method = SEG_RUNS[wildcards.run]
    if pseudo_method:
        inputs["pseudo"] = PSEUDO_MASKS[pseudo_method]
    return inputs


rule train_seg:
    input:
        unpack(train_seg_inputs),
    output:
        checkpoint=f"{RESULTS}/seg/{{run}}-{{tag}}/model.pt",
        metrics=f"{RESULTS}/seg/{{run}}-{{tag}}/metrics.json",
    params:
        # Only what training reads, so e.g. a new eval setting or another CAM method's knobs rerun nothing here.
        seg={key: SEG[key] for key in ("method", "init", "output_stride", "cct", "train")},
        cam={"backbone": CAM["backbone"], "backbone_weights": TRUNK_WEIGHTS},
        seed=CFG["seed"],
        device=CFG["device"],
        precision=CFG["precision"],
        gpus=CFG["gpus"],
        checkpoint_every=CFG["checkpoint_every"],
        work_dir=lambda wc: f"{WORK}/train_seg/{wc.run}-{wc.tag}",
        code=code("train_seg"),
    wildcard_constraints:
        run="|".join(SEG_RUNS),
    threads: 8
    resources:
        gpu=GPUS,
    log:
        f"{LOGS}/train_seg/{{run}}-{{tag}}.log",
    benchmark:
        f"{LOGS}/train_seg_{{run}}/{{tag}}.benchmark.tsv"
    script:
        "../scripts/train_seg.py"


rule eval_seg:
    input:
        manifest=MANIFEST,
        checkpoint=f"{RESULTS}/seg/{{run}}-{{tag}}/model.pt",
    output:
        json=f"{RESULTS}/seg/{{run}}-{{tag}}/eval-{{evaltag}}.json",
        tsv=f"{RESULTS}/seg/{{run}}-{{tag}}/eval-{{evaltag}}.tsv",
    params:
        eval=SEG["eval"],
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
    script:
        "../scripts/eval_seg.py"


rule seg_table:
    input:
        list(SEG_EVAL.values()),
    output:
        md=SEG_TABLE["md"],
        tsv=SEG_TABLE["tsv"],
    params:
        runs=SEG_RUNS,
        evals=dict(SEG_EVAL),
        code=code("seg_table"),
    log:
        f"{LOGS}/seg_table/table1.log",
    script:
        "../scripts/seg_table.py"
