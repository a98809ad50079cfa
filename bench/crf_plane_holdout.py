"""Does the searched CRF plane (refine.crf.bg_thres: search) hold on images it was not picked on?

crf_plane picks the plane on the same pixel-labeled train images eval_masks then scores, so its in-sample gain over
`auto` (the CAMs' best threshold) is partly a fit. This bench splits those images in two (even / odd positions), picks
the plane on one half and scores the CRF masks of the other half at it, both ways, against the `auto` plane (the CAMs'
best threshold on the *whole* split, which favours auto), for each method of each finished run folder (a world-study
folder or a demo clone: results/data/*/manifest.json, results/cams/<method>-*/{train.h5 or train_aug.h5, eval_train.json}).

    python bench/crf_plane_holdout.py /tmp/world_study/reduced-*-s0 --jsonl docs/experiments/crf_plane_holdout_cpu.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clims_core.data.manifest import Manifest  # noqa: E402
from clims_core.io.cam_store import CamStore  # noqa: E402
from clims_core.metrics.segmentation import scores_from_confusion  # noqa: E402
from clims_core.refine.crf import CrfSettings  # noqa: E402
from clims_core.refine.per_image import run_per_image  # noqa: E402
from clims_core.stages.crf_plane import DEFAULT_PLANES, CrfPlaneSettings, PlaneCounter  # noqa: E402


def _one(pattern: str, folder: Path) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise SystemExit(f"{folder}: expected one {pattern}, found {[str(p) for p in found]}")
    return found[0]


def miou_curve(confusions: np.ndarray) -> np.ndarray:
    return np.array([scores_from_confusion(c)["miou"] for c in confusions]) * 100


def foreground_gap(confusions: np.ndarray) -> np.ndarray:
    """Per plane: the masks' foreground share minus the labels' (rows: labels, column 0: predicted background)."""
    total = confusions[0].sum()
    return (total - confusions[:, :, 0].sum(axis=1)) / total - (total - confusions[0, 0, :].sum()) / total


# How a plane is picked on the images it may look at: the best CRF-mask mIoU (refine.crf.bg_thres: search), or the
# plane whose masks mark as much foreground as the labels do (a candidate measured here, not a config option).
CRITERIA = {"search": lambda half: int(np.argmax(miou_curve(half))),
            "share": lambda half: int(np.argmin(np.abs(foreground_gap(half))))}


def holdout(per_image: np.ndarray, planes: tuple[float, ...], auto_plane: float) -> dict:
    """Pick on one half, score on the other, both ways; the auto plane scored on the same halves."""
    halves = (per_image[0::2].sum(0), per_image[1::2].sum(0))
    auto = planes.index(auto_plane)
    folds = []
    for pick_on, score_on in ((0, 1), (1, 0)):
        held_out = miou_curve(halves[score_on])
        fold = {"auto": round(float(held_out[auto]), 2), "best_on_held_out": planes[int(np.argmax(held_out))]}
        for name, pick in CRITERIA.items():
            picked = pick(halves[pick_on])
            fold.update({f"{name}_plane": planes[picked], name: round(float(held_out[picked]), 2)})
        folds.append(fold)
    mean = {key: round(float(np.mean([f[key] for f in folds])), 2) for key in ("auto", *CRITERIA)}
    return {"auto_plane": auto_plane, "folds": folds, **{f"held_out_{k}": v for k, v in mean.items()},
            **{f"gain_{k}": round(mean[k] - mean["auto"], 2) for k in CRITERIA}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    parser.add_argument("--methods", nargs="+", default=["cam", "clims"])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--jsonl", type=Path, help="appended: one line per (run, method)")
    args = parser.parse_args()
    print("| run | method | auto plane | search picks | share picks | held-out mIoU: auto | search | share |")
    print("|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        manifest_path = _one("results/data/*/manifest.json", run)
        manifest = Manifest.load(manifest_path)
        items = manifest.splits["train"]
        labels = dict(zip(manifest.ids("train"), manifest.labels("train")))
        for method in args.methods:
            cams = _one(f"results/cams/{method}-*", run)
            auto_plane = round(float(json.loads((cams / "eval_train.json").read_text())["best_threshold"]), 2)
            planes = tuple(sorted({*DEFAULT_PLANES, auto_plane}))
            # the train split's own store when there is one (a `--stages cams` study makes no train_aug store)
            store = cams / "train.h5" if (cams / "train.h5").is_file() else cams / "train_aug.h5"
            counter = PlaneCounter(manifest, CamStore(store), {i["id"]: i for i in items}, labels,
                                   CrfPlaneSettings(planes=planes, crf=CrfSettings()))
            per_image = np.stack(run_per_image(counter, [i["id"] for i in items], args.processes, f"{run.name} {method}",
                                               total=[], add=lambda done, counts: [*done, counts]))
            row = {"run": run.name, "method": method, "images": len(items), **holdout(per_image, planes, auto_plane)}
            picks = {k: ", ".join(f"{f[k + '_plane']:g}" for f in row["folds"]) for k in CRITERIA}
            print(f"| {run.name} | {method} | {auto_plane:g} | {picks['search']} | {picks['share']} | "
                  f"{row['held_out_auto']:.1f} | {row['held_out_search']:.1f} ({row['gain_search']:+.1f}) | "
                  f"{row['held_out_share']:.1f} ({row['gain_share']:+.1f}) |", flush=True)
            if args.jsonl:
                with open(args.jsonl, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
