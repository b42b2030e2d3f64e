"""The CPU speed of gpaco under real conditions: the main job, threads x workers, the blur.

Four measurements, each in fresh `gpaco` processes (so torch starts with the settings given),
with no competing process of ours and beside one other busy process (a pure-Python loop, what
another job on the same cores looks like):
1. the main job exactly as a user runs it (`gpaco`: the default recipe, PaCo on the embedded
   data with batched augmentation, TensorBoard and plots on), whole, with train.threads = 1 and
   auto (wall seconds of the process, final top-1);
2. the same job's first 2 epochs with threads 1 and 2 (seconds per epoch): two threads can be
   so slow beside other work that a whole run would take most of an hour;
3. the CPU DataLoader path (PIL views, the CIFAR recipes' path), threads x workers, 2 epochs of
   `--grid-steps` steps each (seconds per step of the second epoch);
4. a 13-tap Gaussian blur (the CIFAR "sim" view) on one 32 x 32 image, with 1 and 2 threads.
Every row records the 1-minute load average before it ran: on a shared machine, "idle" means
"no competing process of ours", not an idle machine.

  python benchmarks/cpu_speed.py --out benchmarks/results-cpu-speed.json
  python benchmarks/cpu_speed.py --quick          # workers 0 and 1 only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

FINAL = re.compile(r"final \(last epoch\) accuracy: overall ([\d.]+)")
COMMON = ["output.progress=none", "output.tensorboard=false", "output.plots=false",
          "train.device=cpu"]


def _load() -> float:
    return round(os.getloadavg()[0], 2)


@contextmanager
def busy_process(enabled: bool) -> Iterator[None]:
    """One other process spinning on a core for the duration (none if not `enabled`)."""
    proc = (subprocess.Popen([sys.executable, "-c", "while True: pass"]) if enabled else None)
    try:
        time.sleep(1.0 if enabled else 0.0)
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def run_gpaco(overrides: list[str], folder: Path, common: list[str] = COMMON) -> dict:
    """Wall seconds and final top-1 of one `gpaco train` process."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # gpaco chooses
    cmd = [sys.executable, "-m", "gpaco", "train", *common, *overrides, f"output.dir={folder}",
           "--overwrite"]
    load = _load()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    threads = re.search(r"\((\d+) CPU thread", proc.stdout)
    top1 = FINAL.search(proc.stdout)
    return {"wall_s": round(wall, 1), "top1": float(top1.group(1)) if top1 else None,
            "threads_used": int(threads.group(1)) if threads else None, "load_before": load}


def epoch_seconds(folder: Path) -> list[float]:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [round(json.loads(line)["epoch_seconds"], 2) for line in lines]


def main_job(threads: list[str], tmp: Path, epochs: int | None = None) -> list[dict]:
    """The default run as a user runs it (or, with `epochs`, its first epochs without the
    report files) per threads setting, idle and busy."""
    rows = []
    more = [f"epochs={epochs}"] if epochs else []
    for busy in (False, True):
        for t in threads:
            folder = tmp / f"main-{t}-{busy}-{epochs}"
            with busy_process(busy):
                row = run_gpaco([f"train.threads={t}", *more], folder,
                                common=COMMON if epochs else [])
            seconds = epoch_seconds(folder)
            rows.append({"competing_process": busy, "threads": t, "epochs": len(seconds),
                         "epoch_s": seconds, **row})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def loader_grid(threads: list[str], workers: list[str], steps: int, tmp: Path) -> list[dict]:
    rows = []
    pil = ["data.batched_augment=false", "epochs=2", "schedule.warmup_epochs=0",
           f"train.max_steps_per_epoch={steps}"]
    for busy in (False, True):
        for t in threads:
            for w in workers:
                folder = tmp / f"grid-{t}-{w}-{busy}"
                with busy_process(busy):
                    row = run_gpaco([*pil, f"train.threads={t}", f"data.workers={w}"], folder)
                per_step = round(epoch_seconds(folder)[-1] / steps, 3)
                rows.append({"competing_process": busy, "threads": t, "workers": w,
                             "s_per_step": per_step, **row})
                print(json.dumps(rows[-1]), flush=True)
    return rows


BLUR = """
import time, torch
from PIL import Image
from torchvision.transforms import v2
torch.set_num_threads({threads})
blur = v2.GaussianBlur(13, sigma=(0.1, 2.0))
img = v2.functional.to_image(Image.new("RGB", (32, 32)))
for _ in range(20): blur(img)
start = time.perf_counter()
for _ in range(200): blur(img)
print((time.perf_counter() - start) / 200 * 1000)
"""


def blur_check() -> list[dict]:
    rows = []
    for busy in (False, True):
        for threads in (1, 2):
            with busy_process(busy):
                load = _load()
                out = subprocess.run([sys.executable, "-c", BLUR.format(threads=threads)],
                                     capture_output=True, text=True, check=True).stdout
            rows.append({"competing_process": busy, "threads": threads,
                         "ms_per_image": round(float(out), 3), "load_before": load})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results-cpu-speed.json"))
    p.add_argument("--quick", action="store_true", help="workers 0 and 1 only")
    p.add_argument("--grid-steps", type=int, default=8)
    p.add_argument("--skip", nargs="*", default=[], choices=["main", "probe", "grid", "blur"])
    args = p.parse_args()
    workers = ["0", "1"] if args.quick else ["0", "1", "2"]
    import torch

    result: dict = {"torch": torch.__version__, "cores": os.cpu_count(),
                    "affinity": len(os.sched_getaffinity(0)),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "uptime_before": subprocess.run(["uptime"], capture_output=True,
                                                    text=True).stdout.strip()}
    with tempfile.TemporaryDirectory() as tmp:
        if "blur" not in args.skip:
            result["blur_13_tap"] = blur_check()
        if "probe" not in args.skip:
            result["main_job_2_epochs"] = main_job(["1", "2"], Path(tmp), epochs=2)
        if "main" not in args.skip:
            result["main_job"] = main_job(["1", "auto"], Path(tmp))
        if "grid" not in args.skip:
            result["loader_grid"] = loader_grid(["1", "2"], workers, args.grid_steps, Path(tmp))
    result["uptime_after"] = subprocess.run(["uptime"], capture_output=True,
                                            text=True).stdout.strip()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
