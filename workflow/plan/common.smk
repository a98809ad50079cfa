# Shared helpers: config validation (before any job runs), output tags, per-stage code versions.
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

import clims_core
from clims_core.config import ConfigError, demo_world_arguments, validate_config
from clims_core.tags import tag
from clims_core.version import stage_code_version

# Every job inherits this before torch starts: idle OpenMP threads sleep instead of spinning, which on shared or
# oversubscribed cores made a torch step up to 10x slower (measured on train_irn: 3.46 s -> 0.33 s per step).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Every rule's software environment (`conda: CONDA_ENV`, used with `--software-deployment-method conda`): the repository's
# environment.yml, the same pins as pyproject.toml. Snakemake creates it from a copy of the file, so it cannot install
# this package; its jobs import clims_core from the checkout this plan was read from, the code the rerun triggers hash.
CONDA_ENV = "../../environment.yml"  # relative to the rule files in rules/
if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
    _SOURCE = Path(clims_core.__file__).resolve().parents[1]
    if not (_SOURCE / "pyproject.toml").is_file():
        raise WorkflowError(f"--software-deployment-method conda: clims_core at {_SOURCE} is not a source checkout; "
                            "install it with `pip install -e .` from the repository so the jobs' environment can import it")
    os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [str(_SOURCE), os.environ.get("PYTHONPATH")])))

try:
    CFG = validate_config(config, base_dir=Path.cwd())
except ConfigError as error:
    raise WorkflowError(str(error)) from None

RESULTS = CFG["results"]
LOGS = CFG["logs"]
WORK = CFG["work"]  # step checkpoints of running jobs (resume); never a declared output
# GPUs a training or inference job asks for (Slurm's gpu resource); none when the config pins the CPU.
GPUS = 0 if CFG["device"] == "cpu" else CFG["gpus"]
DEMO = CFG["demo_world"]["enabled"]

# Demo world: its tag covers every generator setting (classes and stuff included).
DEMO_ARGS = demo_world_arguments(CFG)
DEMO_TAG = tag(DEMO_ARGS)
DEMO_DIR = f"{RESULTS}/demo_world/{DEMO_TAG}"

# Dataset: the demo world's VOC folder or the user's.
DATA_ROOT = f"{DEMO_DIR}/VOC" if DEMO else CFG["data"]["root"]
CAPTIONS = f"{DEMO_DIR}/captions" if DEMO else CFG["data"]["captions"]
DATA_TAG = tag(CFG["data"], *([DEMO_TAG] if DEMO else []))
MANIFEST = f"{RESULTS}/data/{DATA_TAG}/manifest.json"

ALL_TARGETS = [MANIFEST]
# Metrics JSONs the summary and the report gather, filled by the stage rule files included after this one.
MASK_EVAL: dict[str, str] = {}  # "<cam method>/<refiner>" -> eval_masks JSON (plan/refine.smk)
SEG_EVAL: dict[str, str] = {}  # "<run>" -> eval_seg JSON (plan/seg.smk)
SEG_EXAMPLES: dict[str, str] = {}  # "<run>" -> eval_seg's folder of the first val images' predictions (plan/seg.smk)
# cam method -> index.json of its refined pseudo masks on train_aug (seg.pseudo_refiner's), what semi-supervised
# training reads.
PSEUDO_MASKS: dict[str, str] = {}
# rule name -> its benchmark TSV (wall time, memory); the summary reports them as timings_s.
BENCHMARKS: dict[str, str] = {}


def benchmark(rule: str, tag: str, used: bool = True) -> str:
    """Where a rule's Snakemake benchmark goes; registered for the summary's timings when the run uses the rule."""
    path = f"{LOGS}/{rule}/{tag}.benchmark.tsv"
    if used:
        BENCHMARKS[rule] = path
    return path


def code(stage: str) -> str:
    """The rerun trigger of a stage: library version + hash of the stage module's code closure."""
    return stage_code_version(f"clims_core.stages.{stage}")


def method_code(stage: str):
    """The rerun trigger of a stage that trains one method (wildcard ``method``): the stage's code closure and its
    method module's, so editing CLIMS replans CLIMS's training onward, not the plain CAM's or PuzzleCAM's."""
    return lambda wildcards: stage_code_version(f"clims_core.stages.{stage}", f"clims_core.methods.{wildcards.method}")


def scatter_position(wildcards) -> dict[str, int]:
    """A scattered job's shard as the stages take it, from its scatteritem '<i>-of-<n>' (scattergather's form);
    an unscattered job is the one shard of its split."""
    if "scatteritem" not in wildcards.keys():
        return {"shard": 0, "shards": 1}
    index, count = wildcards.scatteritem.split("-of-")
    return {"shard": int(index) - 1, "shards": int(count)}
