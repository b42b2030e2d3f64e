"""Accuracy benchmark: methods x datasets x seeds through `gpaco train`, JSON + markdown table.

Each run is a `python -m gpaco train --recipe <dataset>-<method> seed=S ...` subprocess whose
`summary.json` is collected. Runs can go in parallel (`--parallel N`, useful on a GPU that one
small model does not fill). Results report the last epoch (no selection on the test set).

  # CPU: Fashion-MNIST-LT (IF 100) from the Debian idx files
  python benchmarks/accuracy.py --datasets fashion-mnist-lt --seeds 0 1 2 --out bench/fmnist
  # GPU: CIFAR-10-LT (IF 100) from ../shared/data, full 400-epoch recipe on the fast path
  python benchmarks/accuracy.py --datasets cifar10-lt --seeds 0 1 2 --cifar10 \
      --set data.batched_augment=true train.cuda_graph=true train.amp=bf16 --parallel 3 --out bench/c10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout; GPACO_SHARED points elsewhere (a copy carried to a GPU machine)
SHARED = Path(os.environ.get("GPACO_SHARED", REPO.parent / "shared"))
METHODS = ["ce", "balanced-softmax", "paco", "gpaco"]


def prepare_cifar10(dest: Path) -> Path:
    """Rebuild the cifar-10-batches-py layout from ../shared/data once; returns the root."""
    if not (dest / "cifar-10-batches-py" / "test_batch").is_file():
        tool = SHARED / "tools" / "cifar10_from_jpeg.py"
        if not tool.is_file():
            sys.exit(f"CIFAR-10 source not found at {tool}")
        subprocess.run([sys.executable, str(tool), str(dest)], check=True)
    return dest


def run_one(recipe: str, seed: int, out: Path, overrides: list[str]) -> dict:
    folder = out / f"{recipe}-seed{seed}"
    summary = folder / "summary.json"
    if summary.is_file():  # finished earlier: reuse
        return json.loads(summary.read_text())
    base = [sys.executable, "-m", "gpaco", "train"]
    if (folder / "last.pt").is_file():  # interrupted earlier: continue it
        cmd = base + ["--resume", str(folder), *overrides]
    else:
        cmd = base + ["--recipe", recipe, "--overwrite", f"seed={seed}", f"output.dir={folder}",
                      "output.progress=lines", *overrides]
    start = time.time()
    log = (out / f"{recipe}-seed{seed}.log").open("w")
    proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}", "recipe": recipe, "seed": seed}
    result = json.loads(summary.read_text())
    result["wall_seconds"] = time.time() - start
    return result


def _stats(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def table(results: dict[str, list[dict]]) -> str:
    rows = ["| recipe | seeds | epochs | top-1 | many | medium | few | minutes/run |",
            "|---|---|---|---|---|---|---|---|"]
    for recipe, runs in results.items():
        ok = [r for r in runs if "last" in r]
        if not ok:
            rows.append(f"| {recipe} | failed | | | | | | |")
            continue
        col = {k: [r["last"][k] for r in ok if r["last"][k] is not None]
               for k in ("top1", "many", "medium", "few")}
        minutes = statistics.mean(r["train_seconds"] for r in ok) / 60
        rows.append(f"| {recipe} | {len(ok)} | {ok[0]['epochs']} | {_stats(col['top1'])} | "
                    f"{_stats(col['many'])} | {_stats(col['medium'])} | {_stats(col['few'])} | "
                    f"{minutes:.1f} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["fashion-mnist-lt"])
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--set", nargs="*", default=[], metavar="key=value",
                   help="overrides passed to every run")
    p.add_argument("--cifar10", action="store_true",
                   help="rebuild CIFAR-10 from ../shared/data into OUT/data and point data.root there")
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("bench/accuracy"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    overrides = list(args.set)
    if args.cifar10:
        overrides.append(f"data.root={prepare_cifar10(args.out / 'data')}")
    jobs = [(f"{d}-{m}", s) for d in args.datasets for m in args.methods for s in args.seeds]
    with ThreadPoolExecutor(args.parallel) as pool:
        done = list(pool.map(lambda j: run_one(j[0], j[1], args.out, overrides), jobs))
    results: dict[str, list[dict]] = {}
    for (recipe, _), r in zip(jobs, done):
        results.setdefault(recipe, []).append(r)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    md = table(results)
    (args.out / "results.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
