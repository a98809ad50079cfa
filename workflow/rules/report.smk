# Report rules: summary.json and the report page, the last step of `all`.
# What they make for this config (tags, paths, input functions): plan/report.smk.


report: "../report/workflow.rst"


rule summary:
    localrule: True  # a few small files joined: no cluster job
    input:
        **({"trunk_metrics": TRUNK_METRICS} if PRETRAIN_TRUNK else {}),  # plan/trunk.smk
        clip_eval=CLIP_EVAL,
        cam_evals=list(CAM_EVAL.values()),
        mask_evals=list(MASK_EVAL.values()),
        seg_evals=list(SEG_EVAL.values()),
        benchmarks=list(all_benchmarks().values()),
    output:
        report(SUMMARY, caption="../report/summary.rst", category="Report"),
    params:
        benchmarks=all_benchmarks(),
        cam_evals=CAM_EVAL,
        mask_evals=MASK_EVAL,
        seg_evals=SEG_EVAL,
        provenance=provenance,
        code=code("summary"),
    log:
        f"{LOGS}/summary/summary.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/summary.py"


rule report:
    input:
        summary=SUMMARY,
        manifest=MANIFEST,
        stores=[f"{cams_dir(m)}/{REPORT_SPLIT}.h5" for m in CAM_METHODS],
        mask_evals=list(MASK_EVAL.values()),  # their folders hold the pseudo masks of the figures
        seg_examples=list(SEG_EXAMPLES.values()),
    output:
        html=report(REPORT_HTML, caption="../report/index.rst", category="Report"),
        figures=report(directory(f"{REPORT_DIR}/figures"), patterns=["{name}.png"], caption="../report/figures.rst",
                       category="Report"),
    params:
        report=CFG["report"],
        confounders=CFG["eval"]["confounders"],
        split=REPORT_SPLIT,
        stores={m: f"{cams_dir(m)}/{REPORT_SPLIT}.h5" for m in CAM_METHODS},
        mask_dirs={key: _folder(path) for key, path in MASK_EVAL.items()},
        seg_examples=dict(SEG_EXAMPLES),
        code=code("report"),
    log:
        f"{LOGS}/report/report.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/report.py"
