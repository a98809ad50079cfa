# Dataset rules: the demo world (when enabled) and the manifest of any VOC-layout folder.


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
        benchmark("make_demo_world", DEMO_TAG, used=DEMO)
    script:
        "../scripts/make_demo_world.py"


def prepare_data_inputs(wildcards) -> list[str]:
    if DEMO:
        return [DEMO_DIR]
    return [str(Path(DATA_ROOT) / relative) for relative in CFG["data"]["splits"].values()]


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
        benchmark("prepare_data", DATA_TAG)
    script:
        "../scripts/prepare_data.py"
