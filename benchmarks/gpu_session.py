"""Accuracy runs for a short GPU session, sized to the device time at hand.

Reads the fast path's measured seconds per epoch (`cifar_speed.py`'s speed.json) and launches,
all at once on the one GPU:
  * full-length runs (CIFAR-10-LT IF 100, the 400-epoch recipe, or as many epochs as fit the
    budget, with the step milestones kept at 80 % / 90 %) of PaCo, GPaCo, Balanced Softmax and CE
    on the fast path, seed 0;
  * the fast-vs-standard comparison: PaCo on a short schedule, same seeds, both paths;
  * optionally (`--alpha-arms 0.001`), full-length PaCo and GPaCo runs with another alpha: the
    recipes' alpha = 0.01 gives the head class of CIFAR-10-LT a center share of 0.16
    (docs/rebalancing.md); these arms share the budget, so every full-length run gets fewer epochs.
Whatever has not finished by the deadline is stopped; its last evaluation is still reported.

  python benchmarks/gpu_session.py --speed bench/speed/speed.json --budget 420 --out bench/gpu
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import prepare_cifar10  # noqa: E402

FAST = ["data.batched_augment=true", "train.cuda_graph=true", "train.amp=bf16", "train.channels_last=true"]
# GPU cost of a method's epoch relative to PaCo's (GPaCo: both views with gradient).
COST = {"paco": 1.0, "gpaco": 1.5, "balanced-softmax": 0.6, "ce": 0.6}


def schedule(epochs: int) -> list[str]:
    """The CIFAR step schedule scaled to `epochs` (exactly the recipe's at 400)."""
    m1, m2 = round(epochs * 0.8), round(epochs * 0.9)
    warm = min(10, max(1, epochs // 40))
    return [f"epochs={epochs}", f"schedule.milestones=[{m1},{m2}]", f"warmup_epochs={warm}",
            f"eval_every={max(1, epochs // 4)}"]


def run(name: str, recipe: str, overrides: list[str], out: Path, deadline: float) -> dict:
    folder = out / name
    cmd = [sys.executable, "-m", "gpaco", "train", "--recipe", recipe, "--overwrite",
           f"output.dir={folder}", "output.progress=lines", "output.plots=false", *overrides]
    start = time.time()
    with (out / f"{name}.log").open("w") as log:
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=max(1.0, deadline - time.time()))
            status = "done" if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            status = "stopped at deadline"
    result = {"name": name, "status": status, "wall_s": round(time.time() - start, 1),
              "overrides": overrides}
    summary = folder / "summary.json"
    if summary.is_file():
        result["summary"] = json.loads(summary.read_text())
    metrics = folder / "metrics.jsonl"
    if metrics.is_file():
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line]
        evals = [r for r in records if "test" in r]
        result["epochs_done"] = len(records)
        result["last_eval"] = evals[-1] if evals else None
        result["train_s_per_epoch"] = (sum(r["epoch_seconds"] for r in records[1:])
                                       / max(1, len(records) - 1))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--speed", type=Path, required=True)
    p.add_argument("--budget", type=float, required=True, help="seconds from now to stop all")
    p.add_argument("--short-epochs", type=int, default=15)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--workers", type=int, default=3, help="loader workers per standard run")
    p.add_argument("--out", type=Path, default=Path("bench/gpu"))
    p.add_argument("--alpha-arms", type=float, nargs="*", default=[],
                   help="extra full-length PaCo/GPaCo runs with these loss.alpha values")
    p.add_argument("--cpu-dry-run", action="store_true", help="check the script on a CPU")
    args = p.parse_args()
    global FAST
    if args.cpu_dry_run:
        FAST = ["data.batched_augment=true", "train.device=cpu", "train.max_steps_per_epoch=2",
                "train.eval_batch_size=2000"]
    deadline = time.time() + args.budget
    args.out.mkdir(parents=True, exist_ok=True)
    root = f"data.root={prepare_cifar10(args.out / 'data')}"
    f = json.loads(args.speed.read_text())["fast"]["train_s_per_epoch"]
    short = schedule(args.short_epochs)
    jobs = []
    for seed in args.seeds:
        jobs.append((f"cmp-fast-paco-s{seed}", "cifar10-lt-paco", [root, f"seed={seed}", *FAST, *short]))
        jobs.append((f"cmp-standard-paco-s{seed}", "cifar10-lt-paco",
                     [root, f"seed={seed}", f"data.workers={args.workers}", *short,
                      *(FAST[1:] if args.cpu_dry_run else [])]))
    # Full-length runs get the GPU time the comparison leaves (GPU time-slices processes).
    left = (args.budget - 60) / 1.15 - len(args.seeds) * args.short_epochs * f
    methods = ["paco", "gpaco", "balanced-softmax", "ce"]
    arms = [(m, a) for a in args.alpha_arms for m in ("paco", "gpaco")]

    def fitting_epochs() -> int:
        cost = sum(COST[m] for m in methods) + sum(COST[m] for m, _ in arms)
        return min(400, int(left / (f * cost)) // 10 * 10)

    epochs = fitting_epochs()
    if epochs < 400:  # drop CE first: the long-tail methods matter more
        methods = methods[:3]
        epochs = fitting_epochs()
    for m in methods:
        jobs.append((f"full-{m}-s0", f"cifar10-lt-{m}", [root, "seed=0", *FAST, *schedule(epochs)]))
    for m, a in arms:
        jobs.append((f"full-{m}-alpha{a}-s0", f"cifar10-lt-{m}",
                     [root, "seed=0", f"loss.alpha={a}", *FAST, *schedule(epochs)]))
    print(f"fast PaCo {f:.3f} s/epoch; full-length runs: {epochs} epochs of {', '.join(methods)}",
          flush=True)
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda j: run(*j, args.out, deadline), jobs))
    (args.out / "accuracy.json").write_text(json.dumps(results, indent=1))
    for r in results:
        ev = (r.get("summary") or {}).get("last") or ((r.get("last_eval") or {}).get("test"))
        acc = "" if not ev else (f"top1 {ev['top1']:.2f} many {ev['many']:.2f} "
                                 f"medium {ev['medium']:.2f} few {ev['few'] or 0:.2f}")
        print(f"{r['name']:28s} {r['status']:20s} epochs {r.get('epochs_done')} "
              f"{r.get('train_s_per_epoch', 0):.2f}s/ep {acc}", flush=True)


if __name__ == "__main__":
    main()
