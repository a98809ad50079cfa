# Dataset rules: the demo world (when enabled) and the manifest of any VOC-layout folder.
# What they make for this config (tags, paths, input functions): plan/data.smk.


rule make_demo_world:
    output:
        directory(DEMO_DIR),
    params:
        settings=DEMO_ARGS,
        code=code("make_demo_world"),
    threads: 8
    log:
        f"{LOGS}/make_demo_world/{DEMO_TAG}.log",
    benchmark:
        MAKE_DEMO_WORLD_BENCHMARK
    conda:
        CONDA_ENV
    script:
        "../scripts/make_demo_world.py"


rule prepare_data:
    input:
        prepare_data_inputs,
    output:
        manifest=MANIFEST,
    params:
        settings={
            "root": DATA_ROOT,
            "classes": CFG["data"]["classes"],
            "stuff_classes": CFG["data"]["stuff_classes"],
            "split_files": CFG["data"]["splits"],
            "mask_dirs": CFG["data"]["mask_dirs"],
            "captions": CAPTIONS,
            "on_error": CFG["data"]["on_error"],
        },
        code=code("prepare_data"),
    threads: 4
    log:
        f"{LOGS}/prepare_data/{DATA_TAG}.log",
    benchmark:
        PREPARE_DATA_BENCHMARK
    conda:
        CONDA_ENV
    script:
        "../scripts/prepare_data.py"
