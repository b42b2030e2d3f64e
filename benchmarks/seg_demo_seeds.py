"""CE vs CE + GPaCo on the embedded segmentation demo: `gpaco train --recipe seg-default` with
`method=ce|gpaco`, same schedule, several seeds; test mIoU (the demo's held-out split) and the
rarest classes' IoU, in percent.

Each run is the shipped recipe through the CLI (a fresh process), so the numbers are what a
user gets. The rare classes are the item classes with the fewest labelled training pixels
(the run's pixel_counts.json). Writes a JSON list of runs and prints a markdown table.

Usage: python benchmarks/seg_demo_seeds.py [--seeds 0 1 2] [--rare 3] [--out results.json]
       [--runs DIR] [--jobs 1] [key=value ...]   (overrides for every run)
--jobs N runs N trainings at once (one torch thread each), in the order seed 0 CE, seed 0
GPaCo, seed 1 CE, ..., so that a change of machine load hits both methods.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def run_one(method: str, seed: int, folder: Path, overrides: list[str]) -> dict:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "gpaco", "train", "--recipe", "seg-default", f"method={method}",
           f"seed={seed}", f"output.dir={folder}", "output.progress=none",
           "output.tensorboard=false", "--overwrite", *overrides]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    summary = json.loads((folder / "summary.json").read_text())
    rows = list(csv.DictReader((folder / "per_class_iou.csv").open()))
    return {"method": method, "seed": seed, "wall_seconds": round(seconds, 1),
            "train_seconds": round(summary["train_seconds"], 1),
            "miou": summary["last"]["miou"], "macc": summary["last"]["macc"],
            "aacc": summary["last"]["aacc"],
            "iou": {r["class"]: float(r["iou_percent"]) if r["iou_percent"] else None
                    for r in rows},
            "pixels": {r["class"]: int(r["train_pixels"]) for r in rows}}


def rare_classes(run: dict, count: int) -> list[str]:
    items = {k: v for k, v in run["pixels"].items() if k != "background"}
    return sorted(items, key=items.get)[:count]


def table(runs: list[dict], rare: list[str]) -> str:
    def mean_sd(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2f} +- {sd:.2f}"

    lines = [f"| method | seeds | test mIoU (%) | mean IoU (%) of the {len(rare)} rarest ({', '.join(rare)}) "
             "| train s / run |", "|---|---|---|---|---|"]
    for method in ("ce", "gpaco"):
        mine = [r for r in runs if r["method"] == method]
        rare_iou = [statistics.mean(r["iou"][c] or 0.0 for c in rare) for r in mine]
        lines.append(f"| {method} | {len(mine)} | {mean_sd([r['miou'] for r in mine])} | "
                     f"{mean_sd(rare_iou)} | {statistics.mean(r['train_seconds'] for r in mine):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rare", type=int, default=3)
    parser.add_argument("--runs", type=Path, default=Path("runs/seg-demo-seeds"))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results-seg-demo-seeds-cpu.json")
    args, overrides = parser.parse_known_args()
    jobs = [(method, seed) for seed in args.seeds for method in ("ce", "gpaco")]

    def one(job: tuple[str, int]) -> dict:
        method, seed = job
        run = run_one(method, seed, args.runs / f"{method}-{seed}", overrides)
        print(json.dumps({k: run[k] for k in ("method", "seed", "miou", "train_seconds")}),
              flush=True)
        return run

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(one, jobs))
    rare = rare_classes(runs[0], args.rare)
    args.out.write_text(json.dumps({"torch": torch.__version__, "machine": platform.processor()
                                    or platform.machine(), "overrides": overrides,
                                    "jobs": args.jobs, "load_after": os.getloadavg(),
                                    "rare": rare, "runs": runs}, indent=2))
    print(table(runs, rare))


if __name__ == "__main__":
    main()
