# Dataset rules: the demo world (when enabled) and the manifest of any VOC-layout folder.
# The plan only (what this config makes: tags, paths, input functions); the rules are in rules/data.smk.


def prepare_data_inputs(wildcards) -> list[str]:
    if DEMO:
        return [DEMO_DIR]
    return [str(Path(DATA_ROOT) / relative) for relative in CFG["data"]["splits"].values()]


# Benchmark files, registered for the summary's timings.
MAKE_DEMO_WORLD_BENCHMARK = benchmark("make_demo_world", DEMO_TAG, used=DEMO)
PREPARE_DATA_BENCHMARK = benchmark("prepare_data", DATA_TAG)
