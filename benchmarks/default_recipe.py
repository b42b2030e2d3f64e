"""Accuracy of candidate default recipes over seeds: what the no-argument `gpaco` should train.

Each candidate is the `default` recipe plus overrides, trained once per seed in a fresh
`gpaco train` process with one intra-op thread, `--jobs` processes at a time (the accuracy of a
CPU run does not depend on how many run beside it; its seconds do, so they are reported only as
`train_s` of one thread beside `--jobs - 1` others, for comparing candidates, not as the run's
speed: `benchmarks/cpu_speed.py` measures that).

The study behind the default (results-default-recipe-cpu.md): a screen on seeds 0-2, then the
old and the new default on fresh seeds, so the choice is not fitted to the seeds that judge it:

  python benchmarks/default_recipe.py --seeds 10 11 12 13 14 15 16 17 --jobs 2 \
      --only "20 epochs, batch 128" "6 epochs, batch 32 (default)" --out study.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Every candidate but the last two starts from the recipe as it was before issue 15's speed work
# (20 epochs of batch 128, channels-first, test every 10 epochs) and changes what it names.
BEFORE = ["schedule.epochs=20", "train.batch_size=128", "train.channels_last=false",
          "train.eval_every=10"]
CANDIDATES: dict[str, list[str]] = {
    "20 epochs, batch 128": BEFORE,
    "10 epochs, batch 128": [*BEFORE, "schedule.epochs=10"],
    "8 epochs, batch 128": [*BEFORE, "schedule.epochs=8"],
    "8 epochs, batch 128, lr 0.2": [*BEFORE, "schedule.epochs=8", "optim.lr=0.2"],
    "8 epochs, batch 64": [*BEFORE, "schedule.epochs=8", "train.batch_size=64"],
    "8 epochs, batch 64, lr 0.05": [*BEFORE, "schedule.epochs=8", "train.batch_size=64",
                                    "optim.lr=0.05"],
    "8 epochs, batch 64, lr 0.2": [*BEFORE, "schedule.epochs=8", "train.batch_size=64",
                                   "optim.lr=0.2"],
    "8 epochs, batch 64, no warm-up": [*BEFORE, "schedule.epochs=8", "train.batch_size=64",
                                       "schedule.warmup_epochs=0"],
    "8 epochs, batch 64, views aug+sim": [*BEFORE, "schedule.epochs=8", "train.batch_size=64",
                                          "data.views=[cifar_aug,cifar_sim]"],
    "8 epochs, batch 32, lr 0.05": [*BEFORE, "schedule.epochs=8", "train.batch_size=32",
                                    "optim.lr=0.05"],
    "6 epochs, batch 64": [*BEFORE, "schedule.epochs=6", "train.batch_size=64"],
    "6 epochs, batch 64, lr 0.2": [*BEFORE, "schedule.epochs=6", "train.batch_size=64",
                                   "optim.lr=0.2"],
    "6 epochs, batch 32, lr 0.05": [*BEFORE, "schedule.epochs=6", "train.batch_size=32",
                                    "optim.lr=0.05"],
    "6 epochs, batch 32, channels-first": ["train.channels_last=false"],
    # the default recipe since issue 15: 6 epochs of batch 32, channels-last, test every 3
    "6 epochs, batch 32 (default)": [],
}
COMMON = ["output.tensorboard=false", "output.plots=false", "train.device=cpu", "train.threads=1"]
METRICS = ("top1", "many", "medium", "few")


def run_one(overrides: list[str], seed: int, folder: Path) -> dict:
    """Last-epoch metrics and training seconds of one run."""
    cmd = [sys.executable, "-m", "gpaco", "train", "--recipe", "default", *COMMON, *overrides,
           f"seed={seed}", f"output.dir={folder}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    summary = json.loads((folder / "summary.json").read_text())
    return {"seed": seed, "wall_s": round(time.perf_counter() - start, 1),
            "train_s": round(summary["train_seconds"], 1),
            **{m: round(summary["last"][m], 2) for m in METRICS}}


def aggregate(rows: list[dict]) -> dict:
    """Mean and sample standard deviation of each metric over seeds."""
    out = {}
    for key in (*METRICS, "train_s"):
        values = [r[key] for r in rows]
        out[key] = {"mean": round(statistics.mean(values), 2),
                    "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0}
    return out


def markdown(results: dict[str, dict]) -> str:
    lines = ["| candidate | seeds | top-1 | many | medium | few | train s (1 thread, shared) |",
             "|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        agg = res["aggregate"]
        cells = [f"{agg[m]['mean']:.2f} ± {agg[m]['std']:.2f}" for m in METRICS]
        lines.append(f"| {name} | {len(res['runs'])} | {' | '.join(cells)} | "
                     f"{agg['train_s']['mean']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    names = args.only or list(CANDIDATES)
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown:
        raise SystemExit(f"unknown candidates {unknown}; known: {list(CANDIDATES)}")
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        jobs = {(name, seed): pool.submit(run_one, CANDIDATES[name], seed,
                                          Path(tmp) / f"{i}-{seed}")
                for i, name in enumerate(names) for seed in args.seeds}
        results = {}
        for name in names:
            runs = [jobs[name, seed].result() for seed in args.seeds]
            results[name] = {"overrides": CANDIDATES[name], "runs": runs,
                             "aggregate": aggregate(runs)}
            print(markdown({name: results[name]}).splitlines()[-1], flush=True)
    print(markdown(results))
    if args.out:
        args.out.write_text(json.dumps({"jobs": args.jobs, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
