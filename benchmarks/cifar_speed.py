"""Seconds per epoch of the standard DataLoader path against the fast GPU path, one process.

Both run the same recipe (default: PaCo, CIFAR-10-LT IF 100, ResNet-32, batch 128, both views,
evaluation every epoch) for a few epochs; the first epoch of each is reported apart (start-up,
cuDNN autotuning, CUDA-graph capture) and the others are averaged and projected to 400 epochs.

  python benchmarks/cifar_speed.py --epochs 4 --workers 12 --out bench/speed
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import prepare_cifar10  # noqa: E402

from gpaco.config import core as C  # noqa: E402
from gpaco.train import run_dir as rd  # noqa: E402
from gpaco.train.trainer import train  # noqa: E402

FAST = ["data.batched_augment=true", "train.cuda_graph=true", "train.amp=bf16", "train.channels_last=true"]


def time_path(recipe: str, overrides: list[str], folder: Path) -> dict:
    cfg = C.load_config(recipe, overrides=overrides + [f"output.dir={folder}",
                                                       "output.progress=none",
                                                       "output.tensorboard=false",
                                                       "output.plots=false"])
    rd.prepare(folder, resume=False, overwrite=True)
    start = time.perf_counter()
    summary = train(cfg, folder)
    wall = time.perf_counter() - start
    recs = rd.read_metrics(folder)
    steady = recs[1:] or recs
    per_epoch = statistics.mean(r["epoch_seconds"] + r.get("eval_seconds", 0.0) for r in steady)
    return {"first_epoch_s": recs[0]["epoch_seconds"] + recs[0].get("eval_seconds", 0.0),
            "train_s_per_epoch": statistics.mean(r["epoch_seconds"] for r in steady),
            "eval_s_per_epoch": statistics.mean(r.get("eval_seconds", 0.0) for r in steady),
            "s_per_epoch": per_epoch, "projected_400_epochs_min": 400 * per_epoch / 60,
            "steps_per_epoch": recs[-1]["steps"], "wall_s": wall, "top1": summary["last"]["top1"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--recipe", default="cifar10-lt-paco")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--skip-standard", action="store_true")
    p.add_argument("--set", nargs="*", default=[], metavar="key=value")
    p.add_argument("--out", type=Path, default=Path("bench/speed"))
    p.add_argument("--cpu-dry-run", action="store_true",
                   help="check the script on a CPU (no CUDA graph, 3 steps an epoch)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fast = FAST
    common = [f"epochs={args.epochs}", f"data.root={prepare_cifar10(args.out / 'data')}",
              *args.set]
    if args.cpu_dry_run:
        fast = ["data.batched_augment=true"]
        common += ["train.device=cpu", "train.max_steps_per_epoch=3"]
    elif not torch.cuda.is_available():
        sys.exit("cifar_speed.py needs a CUDA GPU (or --cpu-dry-run)")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    result = {"gpu": gpu, "torch": torch.__version__,
              "recipe": args.recipe, "epochs": args.epochs,
              "date": time.strftime("%Y-%m-%d")}
    result["fast"] = time_path(args.recipe, common + fast, args.out / "fast")
    if not args.skip_standard:
        std = common + [f"data.workers={args.workers}"]
        result["standard"] = time_path(args.recipe, std, args.out / "standard")
        result["speedup"] = result["standard"]["s_per_epoch"] / result["fast"]["s_per_epoch"]
    (args.out / "speed.json").write_text(json.dumps(result, indent=2))
    for path in ("standard", "fast"):
        if path in result:
            r = result[path]
            print(f"{path:8s}: {r['s_per_epoch']:.3f} s/epoch (train {r['train_s_per_epoch']:.3f} + "
                  f"eval {r['eval_s_per_epoch']:.3f}; first epoch {r['first_epoch_s']:.1f} s) -> "
                  f"400 epochs in {r['projected_400_epochs_min']:.1f} min")
    if "speedup" in result:
        print(f"fast path is {result['speedup']:.1f}x faster per epoch on {result['gpu']}")


if __name__ == "__main__":
    main()
