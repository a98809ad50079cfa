"""Seed study of the CAM methods: for each seed, plain CAM from scratch, then CLIMS variants (or PuzzleCAM, or more
plain-CAM epochs) started from it; every run's CAMs of the train split evaluated (mIoU, confounder false positives).
Prints mean ± sd per variant.

One seed's chain takes about a minute on a GPU (the README's table came from an H200) and far longer on CPU:

    python bench/seed_study.py --seeds 0 1 2 3 4 5 --out /tmp/seed_study --device cuda --parallel 6 --fp32 \
        --clip results/clip/finetune-<tag>/clip.pt
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clims_core.config import demo_world_arguments, validate_config  # noqa: E402
from clims_core.methods.clims_settings import resolve_clims_section  # noqa: E402

# CLIMS variants: overrides of the resolved cam.clims section.
VARIANTS = {
    "clims_default": {},
    # the previous demo default: both softmaxes over all prompts, lr 1e-2 for 3 epochs
    "clims_all_prompts_lr1e-2_3ep": {"otm_softmax": "all_prompts", "cbs_softmax": "all_prompts", "lr": 0.01,
                                     "epochs": 3},
    # the default's learning rate and schedule, both softmaxes over all prompts
    "clims_all_prompts_lr3e-3": {"otm_softmax": "all_prompts", "cbs_softmax": "all_prompts", "lr": 0.003},
    "clims_cbs2": {"loss_weights": [1.0, 1.5, 2.0, 1.0]},
}
# Other methods started from the seed's plain CAM (like CLIMS): method and overrides of cam.train.
FROM_CAM = {
    "puzzlecam_lr1e-2_3ep": ("puzzlecam", {"lr": 0.01, "epochs": 3}),
    "puzzlecam_lr1e-3_3ep": ("puzzlecam", {"lr": 0.001, "epochs": 3}),
    "cam_trained_on_lr1e-2_3ep": ("cam", {"lr": 0.01, "epochs": 3}),  # the control: more plain-CAM epochs
}


def _chain(config_path: Path, out: Path, seed: int, device: str, variants: list[str], fp32: bool) -> None:
    """One seed: train cam, then each CLIMS variant from it; evaluate each; append JSON lines to results.jsonl."""
    from clims_core.stages import eval_cams, make_cams, train_cam

    precision = "fp32" if fp32 else "auto"  # fp32: the same arithmetic as the CPU demo (TF32 convolutions aside)
    cfg = validate_config(yaml.safe_load(config_path.read_text()), base_dir=REPO)
    manifest = out / "manifest.json"
    runs = [("cam", "cam", None)] + [(name, "clims", VARIANTS[name]) if name in VARIANTS else (name, *FROM_CAM[name])
                                     for name in variants]
    for name, method, overrides in runs:
        clims = resolve_clims_section(cfg["cam"]["clims"], cfg["data"]["stuff_classes"], cfg["eval"]["confounders"],
                                      cfg["data"]["classes"])
        cam = copy.deepcopy(cfg["cam"])
        if method == "clims":
            clims.update(copy.deepcopy(overrides))
        elif overrides:
            cam["train"].update(overrides)
        settings = train_cam.settings_from_config(method, cam, clims, seed=seed, device=device, threads=2,
                                                  precision=precision)
        run_dir = out / f"{name}_s{seed}"
        init = out / f"cam_s{seed}" / "model.pt" if overrides is not None else None
        clip = (cfg["clip"]["model"], str(out / "clip.pt")) if method == "clims" else None
        train_cam.run(settings, manifest, run_dir / "model.pt", run_dir / "metrics.json", init_checkpoint=init, clip=clip)
        make_cams.run(make_cams.MakeCamsSettings(split="train", device=device, precision=precision, threads=2),
                      manifest, run_dir / "model.pt", run_dir / "train.h5")
        result = eval_cams.run(eval_cams.EvalCamsSettings(split="train", confounders=cfg["eval"]["confounders"]),
                               manifest, run_dir / "train.h5", run_dir / "eval.json", run_dir / "eval.tsv",
                               run_dir / "curve.png", method)
        line = {"variant": name, "seed": seed, "miou": round(result["miou"], 2),
                "fp": {k: round(100 * v["rate"], 1) for k, v in result["confounder_fp"].items() if v["rate"] is not None}}
        with open(out / "results.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")


def _prepare(config_path: Path, out: Path, clip_checkpoint: Path) -> None:
    """The demo world, its manifest and the (fine-tuned) CLIP the CLIMS runs use."""
    from clims_core.stages import make_demo_world, prepare_data

    cfg = validate_config(yaml.safe_load(config_path.read_text()), base_dir=REPO)
    make_demo_world.run(demo_world_arguments(cfg), out / "world", workers=4)
    data = cfg["data"]
    prepare_data.run(prepare_data.PrepareSettings(root=out / "world" / "VOC", classes=data["classes"],
                                                  stuff_classes=data["stuff_classes"], split_files=data["splits"],
                                                  mask_dirs=data["mask_dirs"], threads=4), out / "manifest.json")
    (out / "clip.pt").unlink(missing_ok=True)
    (out / "clip.pt").symlink_to(clip_checkpoint.resolve())


def _table(out: Path) -> None:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mious = [r["miou"] for r in rows if r["variant"] == variant]
        sd = statistics.pstdev(mious) if len(mious) > 1 else 0.0
        pairs = sorted({p for r in rows for p in r["fp"]})
        fps = {p: statistics.mean(r["fp"][p] for r in rows if r["variant"] == variant and p in r["fp"]) for p in pairs}
        print(f"{variant:34s} mIoU {statistics.mean(mious):5.1f} ± {sd:4.1f}  {mious}  "
              + "  ".join(f"{p} {v:.1f}%" for p, v in fps.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--clip", type=Path, required=True, help="the CLIP checkpoint CLIMS uses (e.g. the workflow's "
                        "results/clip/finetune-<tag>/clip.pt)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=[*VARIANTS, *FROM_CAM])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA (as the README's study)")
    parser.add_argument("--chain", type=int, help=argparse.SUPPRESS)  # internal: run one seed's chain
    args = parser.parse_args()
    if args.chain is not None:
        _chain(args.config, args.out, args.chain, args.device, args.variants, args.fp32)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.jsonl").unlink(missing_ok=True)
    _prepare(args.config, args.out, args.clip)
    pending = list(args.seeds)
    while pending:
        batch, pending = pending[:args.parallel], pending[args.parallel:]
        processes = [subprocess.Popen([sys.executable, __file__, "--config", str(args.config), "--clip", str(args.clip),
                                       "--out", str(args.out), "--device", args.device, "--chain", str(seed),
                                       "--variants", *args.variants] + (["--fp32"] if args.fp32 else []))
                     for seed in batch]
        if any(p.wait() for p in processes):
            raise SystemExit("a seed's chain failed (see its output above)")
    _table(args.out)


if __name__ == "__main__":
    main()
