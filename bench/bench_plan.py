"""Planning time at VOC scale: ``snakemake -n`` of config/voc12.yaml on a fake VOC tree (10,582 train_aug ids,
4 px images), with ``cams.shards`` 1 and 8. Process start is included, as a user sees it.

    python bench/bench_plan.py --repeats 3

Target (issue 8): <= 5 s for both. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.workflow import VOC_SPLITS, make_fake_voc, planned_jobs, snakemake, voc_plan_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench_plan_"))
    voc = make_fake_voc(scratch / "VOC2012")
    for shards in (1, 8):
        config = voc_plan_config(voc, scratch)
        config["cams"]["shards"] = shards
        config["refine"]["shards"] = shards
        times = []
        for repeat in range(args.repeats):
            workdir = scratch / f"shards{shards}_{repeat}"
            start = time.perf_counter()
            result = snakemake(workdir, config, "-n", "--quiet", "rules")
            times.append(time.perf_counter() - start)
            if result.returncode != 0:
                sys.exit((result.stdout + result.stderr)[-3000:])
        jobs = sum(planned_jobs(result).values())
        print(f"shards {shards}: {jobs} jobs for {VOC_SPLITS['train_aug']} train_aug ids, "
              f"plan {statistics.median(times):.2f} s median of {args.repeats} (min {min(times):.2f} s)")


if __name__ == "__main__":
    main()
