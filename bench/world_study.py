"""World study: a CLIMS recipe against the plain CAM it starts from, over worlds x seeds, through the real workflow.

Each (world, seed) runs `snakemake --until eval_cams` in its own folder (config/config.yaml <- the size overlay <-
config/worlds/<world>.yaml <- the seed <- the recipe overlays); recipes of one (world, seed) share its folder, so they
reuse its world, CLIP and plain CAM. One JSON line per run goes to --jsonl; the end prints, per world, the plain CAM
and CLIMS mIoU (mean ± sd over seeds), their paired difference, wins, the worst confounder pair's FP change and what
CLIP fine-tuning did to the stuff test's masked-object accuracy (clims_core/metrics/world_study.py).
Worlds: names, or `tune` / `confirm` / `all` (config/worlds/splits.yaml).

    python bench/world_study.py --worlds tune --seeds 0 1 2 --size reduced --out /tmp/world_study \
        --jsonl docs/experiments/world_study_reduced_cpu.jsonl [--recipes config/recipes/x.yaml ...]

CPU cost at --size reduced (800 images at 96 px): about 4-6 minutes per (world, seed) for the CLIP, the plain CAM and
one CLIMS recipe on 2 cores; each further recipe adds its CLIMS training (about 2 minutes).

`--stages masks` goes on to both refiners' pseudo masks (eval_masks), `--stages seg` to CCT too (labeled-only, + each
method's masks; DeepLab left out), with val raised to --val images so that CCT's val mIoU means something; the end
then also prints the downstream table (clims_core/metrics/world_study.py's downstream_table).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clims_core.metrics.world_study import (DEMO_WORLD, clip_table, downstream_from_evals,  # noqa: E402
                                            downstream_table, markdown_table, row_from_evals, run_config, summarise,
                                            summarise_downstream, world_names)

WORLDS = REPO / "config" / "worlds"
SIZES = {"reduced": REPO / "config" / "reduced.yaml", "full": None}
# How far each run goes: the Snakemake rules it stops at, one tuple per call. eval_cams is never an --until target
# beside the refiners: with `auto` thresholds the refiners read its JSON, and Snakemake will not run the jobs after
# an --until rule (it stops with "Out of jobs ready to be started"); a second call then adds any eval_cams not run.
STAGES = {"cams": (("eval_cams", "eval_clip"),),
          "masks": (("eval_clip", "eval_masks"), ("eval_cams", "eval_clip")),
          "seg": (("eval_clip", "eval_masks", "eval_seg"), ("eval_cams", "eval_clip"))}


def _snakemake(workdir: Path, config: Path, cores: int, *args: str, triggers: list[str] | None = None,
               until: tuple[str, ...] = ("eval_cams", "eval_clip")) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(config), "--cores", str(cores),
               "--until", *until, *args]
    if triggers:
        command += ["--rerun-triggers", *triggers]
    # cwd: the run folder, as `python -m` puts the cwd first on sys.path (a checkout there would shadow PYTHONPATH).
    return subprocess.run(command, capture_output=True, text=True, cwd=workdir,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


@dataclass
class EvalFiles:
    """The evaluation JSONs of one run's DAG."""
    cams: dict[str, Path] = field(default_factory=dict)               # method -> eval_cams's eval_train.json
    masks: dict[tuple[str, str], Path] = field(default_factory=dict)  # (method, refiner) -> eval_masks's JSON
    seg: dict[str, Path] = field(default_factory=dict)                # run -> eval_seg's JSON
    clip: Path | None = None


def _eval_files(workdir: Path, config: Path, cores: int, calls: tuple[tuple[str, ...], ...]) -> EvalFiles:
    """The evaluation JSONs in this config's DAG (Snakemake's --summary lists exactly this config's paths, whatever
    else earlier recipes left in the folder)."""
    lines = [line for until in calls
             for line in _snakemake(workdir, config, cores, "--summary", until=until).stdout.splitlines()]
    files = EvalFiles()
    for line in lines:
        path, *_ = line.split("\t")
        folder = Path(path).parent.name.split("-")  # <method>-<tag>, <method>-<refiner>-<tag>, <run>-<tag>
        if path.endswith("/eval_train.json") and path.startswith("results/cams/"):
            files.cams[folder[0]] = workdir / path
        elif path.endswith("/eval_train.json") and path.startswith("results/masks/"):
            files.masks[folder[0], folder[1]] = workdir / path
        elif path.startswith("results/seg/") and Path(path).name.startswith("eval-") and path.endswith(".json"):
            files.seg[folder[0]] = workdir / path
        elif path.endswith("/clip_eval.json"):
            files.clip = workdir / path
    return files


def _read(paths: dict) -> dict:
    return {key: json.loads(path.read_text()) for key, path in paths.items()}


def _recipe(spec: str) -> tuple[str, list[dict]]:
    """'a.yaml+b.yaml' -> ('a+b', [overlay a, overlay b])."""
    paths = [Path(part) for part in spec.split("+")]
    return "+".join(path.stem for path in paths), [yaml.safe_load(path.read_text()) or {} for path in paths]


def _commit() -> str:
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", default=["tune"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipes", nargs="*", default=[],
                        help="YAML overlays of method settings, each one recipe; 'a.yaml+b.yaml' merges both in order "
                             "(none: the config's own, 'default')")
    parser.add_argument("--size", choices=sorted(SIZES), default="reduced")
    parser.add_argument("--methods", nargs="+", default=["cam", "clims"])
    parser.add_argument("--compare", default="clims", help="the method the table sets against the plain CAM")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--out", type=Path, required=True, help="scratch folder, one subfolder per (world, seed)")
    parser.add_argument("--jsonl", type=Path, required=True, help="appended: one line per run")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--stages", choices=sorted(STAGES), default="cams",
                        help="how far each run goes: CAMs (default), + pseudo masks, + CCT")
    parser.add_argument("--val", type=int, default=400,
                        help="val images of the world with --stages seg (the reduced size's 40 are too few for CCT)")
    parser.add_argument("--table-only", action="store_true", help="print the table of --jsonl and run nothing")
    parser.add_argument("--clip-only", action="store_true",
                        help="only the CLIPs (--until eval_clip): for fine-tuning recipes; prints the CLIP table")
    parser.add_argument("--rerun-triggers", nargs="+", default=None,
                        help="passed to Snakemake; 'mtime input' keeps the worlds, CLIPs and plain CAMs an earlier "
                             "commit made when a new recipe's code changed a shared module (the code trigger)")
    args = parser.parse_args()

    recipes = [_recipe(spec) for spec in args.recipes] or [("default", [])]
    calls = (("eval_clip",),) if args.clip_only else STAGES[args.stages]
    downstream = [{"seg": {"methods": ["cct"]}, "demo_world": {"n_val": args.val}}] if args.stages == "seg" else []
    if not args.table_only:
        base = yaml.safe_load(args.config.read_text())
        size = yaml.safe_load(SIZES[args.size].read_text()) if SIZES[args.size] else None
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
        for world in world_names(WORLDS, args.worlds):
            overlay = None if world == DEMO_WORLD else yaml.safe_load((WORLDS / f"{world}.yaml").read_text())
            for seed in args.seeds:
                workdir = args.out / f"{args.size}-{world}-s{seed}"
                for recipe, recipe_overlay in recipes:
                    workdir.mkdir(parents=True, exist_ok=True)
                    config = run_config(base, overlay, size, [*downstream, *recipe_overlay], seed, args.methods)
                    # Each recipe's own config file: a second study on the same folder (refused by Snakemake's
                    # lock) must not swap the config under a running one. config.yaml: the last recipe's, for the
                    # probes, which read only its dataset keys and CLIMS settings.
                    config_path = workdir / f"config-{recipe}.yaml"
                    for path in (config_path, workdir / "config.yaml"):
                        path.write_text(yaml.safe_dump(config))
                    start = time.time()
                    for until in calls:
                        result = _snakemake(workdir, config_path, args.cores, triggers=args.rerun_triggers,
                                            until=until)
                        if result.returncode:
                            break
                    wall = round(time.time() - start, 1)
                    if result.returncode:
                        print(f"{world} seed {seed} {recipe}: snakemake failed (rc {result.returncode}), see "
                              f"{workdir}/logs\n{result.stderr[-2000:]}", file=sys.stderr)
                        continue
                    files = _eval_files(workdir, config_path, args.cores, calls)
                    row = row_from_evals(world, seed, recipe, args.size, {} if args.clip_only else _read(files.cams),
                                         json.loads(files.clip.read_text()) if files.clip else None)
                    if args.stages != "cams" and not args.clip_only:
                        # --summary lists the whole DAG's files; --stages masks never makes the seg ones
                        seg = _read(files.seg) if args.stages == "seg" else {}
                        row.update(downstream_from_evals(_read(files.masks), seg),
                                   stages=args.stages, **({"val_images": args.val} if downstream else {}))
                    row.update(commit=_commit(), wall_s=wall)
                    with open(args.jsonl, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(row) + "\n")
                    figures = ([f"{m} {r['miou']:.1f}" for m, r in row["methods"].items()]
                               + [f"{m} {ref} masks {v:.1f}" for m, refs in row.get("masks", {}).items()
                                  for ref, v in refs.items()]
                               + [f"{run} {v:.1f}" for run, v in row.get("seg", {}).items()]
                               + [f"{c} object crops {r['object_accuracy']:.1f}" for c, r in row["clip"].items()])
                    print(f"{world} seed {seed} {recipe}: {', '.join(figures)} ({wall:.0f} s)", flush=True)
    if not args.jsonl.is_file():
        sys.exit(f"no run finished, so {args.jsonl} has no rows to tabulate")
    rows = [json.loads(line) for line in args.jsonl.read_text().splitlines() if line.strip()]
    names = {name for name, _ in recipes}
    chosen = [row for row in rows if row["recipe"] in names or args.table_only]
    if args.clip_only:
        print(clip_table(chosen))
    else:
        print(markdown_table(summarise(chosen, method=args.compare), method=args.compare))
        if any(row.get("masks") or row.get("seg") for row in chosen):
            print()
            print(downstream_table(summarise_downstream(chosen), method=args.compare))


if __name__ == "__main__":
    main()
