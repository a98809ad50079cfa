# The run's headline figures (summary.json); the HTML report builds on it.

SUMMARY = f"{RESULTS}/report/summary.json"
ALL_TARGETS.append(SUMMARY)


rule summary:
    input:
        clip_eval=CLIP_EVAL,
        cam_evals=list(CAM_EVAL.values()),
        benchmarks=list(BENCHMARKS.values()),
    output:
        SUMMARY,
    params:
        benchmarks=BENCHMARKS,
        cam_evals=CAM_EVAL,
        code=code("summary"),
    log:
        f"{LOGS}/summary/summary.log",
    script:
        "../scripts/summary.py"
