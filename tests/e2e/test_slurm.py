"""The Slurm profile: it parses, names only real rules, its resources reach the jobs, and the workflow runs on a real
one-node Slurm cluster (tests/e2e/slurm_cluster.py) with each rule a Slurm job that Slurm's history records."""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401  (slurm_cluster is a fixture)
from tests.e2e.workflow import REPO, TINY_DEMO, snakemake

PROFILE = REPO / "workflow" / "profiles" / "slurm"
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
# Rules that train or run a network: they ask Slurm for a GPU unless the config pins the CPU.
GPU_RULES = {"pretrain_clip", "pretrain_trunk", "finetune_clip", "eval_clip", "train_cam", "make_cams", "train_irn",
             "make_pseudo_masks", "train_seg", "train_deeplab", "eval_seg", "segment",
             "voc_submission"}
# What the Slurm run asks for: the plain-CAM evaluation, i.e. these five jobs in a chain.
CHAIN = {"make_demo_world", "prepare_data", "train_cam", "make_cams", "eval_cams"}


def tiny_config(device: str) -> dict:
    """TINY_DEMO on ``device``, with one GPU per training job when that is not the CPU."""
    return {**copy.deepcopy(TINY_DEMO), "device": device, "gpus": 1}


def workflow_rules() -> set[str]:
    """Every rule name defined in workflow/rules/*.smk and the Snakefile (conditional rules included)."""
    pattern = re.compile(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
    files = [*RULE_FILES, REPO / "workflow" / "Snakefile"]
    return {name for path in files for name in pattern.findall(path.read_text())}


def load_profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def job_resources(dry_run_output: str) -> dict[str, list[dict[str, str]]]:
    """rule -> the resources of each of its planned jobs, from ``snakemake -n``'s job listing."""
    jobs: dict[str, list[dict[str, str]]] = {}
    rule = None
    for line in dry_run_output.splitlines():
        if match := re.match(r"(?:local)?(?:rule|checkpoint) (\w+):$", line.strip()):
            rule = match.group(1)
        elif rule and line.strip().startswith("resources:"):
            pairs = line.split(":", 1)[1].split(", ")
            jobs.setdefault(rule, []).append(dict(pair.strip().split("=", 1) for pair in pairs))
            rule = None
    return jobs


def test_profile_parses_and_names_only_existing_rules():
    profile = load_profile()
    assert profile["executor"] == "slurm"
    rules = workflow_rules()
    assert {"train_cam", "make_cams", "eval_cams", "prepare_data"} <= rules  # the parser finds rules at all
    set_resources = profile["set-resources"]
    assert set(set_resources) <= rules, f"profile names rules that do not exist: {set(set_resources) - rules}"
    missing = rules - set(set_resources) - {"all"}
    assert not missing, f"rules without resources in the Slurm profile: {sorted(missing)}"
    for rule, resources in [("default-resources", profile["default-resources"]), *set_resources.items()]:
        assert set(resources) == {"mem_mb", "runtime", "cpus_per_task"}, rule
        assert all(isinstance(v, int) and v > 0 for v in resources.values()), (rule, resources)


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_profile_resources_reach_the_jobs(tmp_path, device):
    """A dry run with the profile: each job gets its rule's memory, time and cores; GPUs only when not on the CPU."""
    config = tiny_config(device)
    result = snakemake(tmp_path, config, "-n", "--workflow-profile", str(PROFILE))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    jobs = job_resources(result.stdout)
    assert CHAIN | {"pretrain_clip", "finetune_clip"} <= set(jobs), sorted(jobs)
    set_resources = load_profile()["set-resources"]
    for rule, planned in jobs.items():
        expected = set_resources.get(rule, load_profile()["default-resources"])
        for resources in planned:
            assert {k: resources.get(k) for k in expected} == {k: str(v) for k, v in expected.items()}, rule
            gpus = resources.get("gpu", "0")
            if device == "cpu" or rule not in GPU_RULES:
                assert gpus == "0", f"{rule} asks Slurm for {gpus} GPUs on device {device}"
            else:
                assert gpus == "1", f"{rule} trains or runs a network but asks Slurm for {gpus} GPUs (gpus: 1)"


def node_profile(cluster: SlurmCluster, folder: Path) -> Path:
    """The repo's Slurm profile scaled down to the test node (cores and memory capped at what it has), plus the
    settings a cluster without an accounting database needs: squeue for job status, no account; status checked every
    second instead of every 10 (a chain of five short jobs otherwise waits up to 10 s after each)."""
    profile = load_profile()

    def fit(resources: dict) -> dict:
        return {**resources, "cpus_per_task": min(resources["cpus_per_task"], cluster.cpus),
                "mem_mb": min(resources["mem_mb"], cluster.memory_mb)}

    profile["default-resources"] = fit(profile["default-resources"])
    profile["set-resources"] = {rule: fit(r) for rule, r in profile["set-resources"].items()}
    profile.update({"slurm-status-command": "squeue", "slurm-no-account": True,
                    "slurm-init-seconds-before-status-checks": 2, "seconds-between-status-checks": 1,
                    "latency-wait": 10})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def tres_mem_mb(tres: str) -> float:
    value = dict(item.split("=", 1) for item in tres.split(","))["mem"]
    return float(value[:-1]) * {"M": 1, "G": 1024, "T": 1024**2}[value[-1]]


@pytest.mark.e2e
def test_workflow_runs_on_slurm(slurm_cluster: SlurmCluster, tmp_path, monkeypatch):  # noqa: F811
    cluster = slurm_cluster
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
    workdir = tmp_path / "run"
    config = tiny_config("cpu")
    plan = snakemake(workdir, config, "-n", "--cores", "1")
    assert plan.returncode == 0, plan.stderr[-3000:]
    target = re.search(r"results/cams/cam-[0-9a-f]{8}-[0-9a-f]{8}/eval_train\.json", plan.stdout).group(0)
    profile = node_profile(cluster, tmp_path / "profile")

    start = time.monotonic()
    result = snakemake(workdir, config, "--workflow-profile", str(profile), target, timeout=900)
    elapsed = time.monotonic() - start
    slurmctld_log = (cluster.state / "slurmctld.log").read_text()[-3000:]
    assert result.returncode == 0, result.stderr[-5000:] + "\n--- slurmctld.log ---\n" + slurmctld_log
    assert 0 <= json.loads((workdir / target).read_text())["miou"] <= 100

    # The queue history (squeue --states=all) holds one completed job per rule of the chain, in our work dir.
    ours = [job for job in cluster.queue_history() if Path(job["workdir"]).resolve() == workdir.resolve()]
    rules = {}
    for job in ours:
        rule = re.fullmatch(r"rule_(\w+?)(?:_wildcards_.*)?", job["comment"]).group(1)
        assert rule not in rules, f"{rule} ran twice: {ours}"
        rules[rule] = job
    assert set(rules) == CHAIN, ours
    assert all(job["state"] == "COMPLETED" for job in ours), ours
    assert len({job["name"] for job in ours}) == 1  # one workflow run: Snakemake names every job by its run id

    # Slurm's job completion record has the same jobs, finished with exit code 0 and the profile's memory.
    completed = {entry["JobId"]: entry for entry in cluster.completed_jobs()}
    set_resources = load_profile()["set-resources"]
    for rule, job in rules.items():
        entry = completed[job["id"]]
        assert entry["JobState"] == "COMPLETED" and entry["ExitCode"] == "0:0", entry
        assert tres_mem_mb(entry["Tres"]) == min(set_resources[rule]["mem_mb"], cluster.memory_mb), (rule, entry)
    print(f"{len(ours)} Slurm jobs ({', '.join(sorted(rules))}) in {elapsed:.0f} s")
