"""The default job's wall time, split into its epochs and everything else (the fixed cost:
imports, building the run, evaluations, outputs, exit), A/B against another checkout.

Each round runs `gpaco` exactly as a user types it (no arguments but the run folder), once
with this checkout's sources and once with `--before`'s (a worktree of an older commit,
`git worktree add /tmp/before <commit>`), alternating so that the VM's drift hits both alike.
A checkout without `gpaco.__main__.entry` runs through `gpaco.cli.main`, as its console
script did.

  python benchmarks/run_overhead.py --before /tmp/before --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# The console script of either checkout: the current entry point, else the older cli.main.
RUN = ("import sys\n"
       "try:\n    from gpaco.__main__ import entry\n"
       "except ImportError:\n    from gpaco.cli import main\n    sys.exit(main())\n"
       "entry()\n")


def one_run(src: Path, folder: Path) -> dict[str, float]:
    """Wall seconds of one default job with the sources in `src`, its epochs' seconds (from
    metrics.jsonl) and its last-epoch top-1."""
    env = dict(os.environ, PYTHONPATH=str(src))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", RUN, "train", f"output.dir={folder}"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    epochs = sum(r["epoch_seconds"] for r in records)
    return {"wall": wall, "epochs": epochs, "fixed": wall - epochs,
            "top1": records[-1]["test"]["top1"]}


def _commit(root: Path) -> str:
    """The commit a checkout is at (with "+changes" when its tree differs from it)."""
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True).stdout.strip()
    return head + ("+changes" if dirty else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", type=Path, required=True, help="an older checkout's root")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="a JSON file for the runs")
    args = p.parse_args()
    trees = {"before": args.before.resolve() / "src", "now": SRC}
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for name, src in trees.items():
                r = one_run(src, Path(tmp) / f"{name}{i}")
                runs[name].append(r)
                print(f"{name:6s} round {i + 1}: wall {r['wall']:.2f} s, epochs {r['epochs']:.2f} s, "
                      f"fixed {r['fixed']:.2f} s, top-1 {r['top1']:.2f}", flush=True)
    for name, rs in runs.items():
        print(f"{name:6s} median wall {statistics.median(r['wall'] for r in rs):.2f} s, "
              f"median fixed {statistics.median(r['fixed'] for r in rs):.2f} s")
    if args.out:
        record = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "commits": {k: _commit(src.parent) for k, src in trees.items()},
                  "load_after": os.getloadavg(), "runs": runs}
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
