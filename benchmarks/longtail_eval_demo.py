"""The default demo through the long-tail evaluation (issue 25): PaCo, GPaCo and Balanced
Softmax on the embedded Fashion-MNIST-LT at the default recipe's schedule, over seeds; each
run's last.pt through `gpaco eval --posthoc --prior-shift` (temperature and logit adjustment
fitted on the embedded validation split, measured on test), then means and spreads.

Each run is a fresh `gpaco train` process with one intra-op thread, `--jobs` at a time (a CPU
run's numbers do not depend on what runs beside it; its seconds do, and are not reported here).
Runs already in --runs are reused, so the evaluation can be redone on the same weights:

  python benchmarks/longtail_eval_demo.py --seeds 0 1 2 --jobs 2 --runs /tmp/lt-demo \
      --out benchmarks/results-longtail-eval-demo-cpu
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

METHODS = ("paco", "gpaco", "balanced_softmax")
COMMON = ["output.tensorboard=false", "train.device=cpu", "train.threads=1"]
COLUMNS = ("top1", "many", "medium", "few", "head_class")


def gpaco(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "gpaco", *args], check=True,
                   stdout=subprocess.DEVNULL)


def run_one(runs: Path, method: str, seed: int) -> Path:
    folder = runs / f"{method}-seed{seed}"
    if not (folder / "last.pt").is_file():
        gpaco("train", f"method={method}", f"seed={seed}", f"output.dir={folder}", *COMMON,
              "--overwrite")
    out = folder / "eval-last"
    gpaco("eval", "--checkpoint", str(folder / "last.pt"), "--posthoc", "--prior-shift",
          "--out", str(out))
    return out


def mean_std(values: list[float | None]) -> str:
    xs = [v for v in values if v is not None]
    if not xs:
        return "-"
    return f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs):.2f}" if len(xs) > 1 \
        else f"{xs[0]:.2f}"


def summarize(results: dict[str, list[Path]]) -> tuple[dict, list[str]]:
    raw: dict = {}
    lines = ["| method | correction | " + " | ".join(COLUMNS) + " | ECE | ECE many | ECE medium"
             " | ECE few | NLL | tau | temperature |", "|---|---|" + "---|" * (len(COLUMNS) + 7)]
    for method, outs in results.items():
        posthoc = [json.loads((o / "posthoc.json").read_text()) for o in outs]
        raw[method] = {"posthoc": posthoc,
                       "prior_shift": [json.loads((o / "prior_shift.json").read_text())
                                       for o in outs]}
        for variant in posthoc[0]["test"]:
            vs = [p["test"][variant] for p in posthoc]
            cal = [[(v["calibration"].get(s) or {}).get(k) for v in vs]
                   for s, k in (("overall", "ece"), ("many", "ece"), ("medium", "ece"),
                                ("few", "ece"), ("overall", "nll"))]
            fit = {"temperature": "temperature", "logit_adjustment": "tau",
                   "both": "tau"}.get(variant)
            tau = mean_std([p["fit"]["tau"] for p in posthoc]) if fit == "tau" else ""
            temp = {"temperature": "temperature", "both": "tau_temperature"}.get(variant)
            lines.append(f"| {method} | {variant} | "
                         + " | ".join(mean_std([v[c] for v in vs]) for c in COLUMNS) + " | "
                         + " | ".join(mean_std(c) for c in cal) + f" | {tau} | "
                         + (mean_std([p["fit"][temp] for p in posthoc]) if temp else "") + " |")
    shifts: dict[str, dict[str, list[float]]] = {}
    for method, r in raw.items():
        for seed_rows in r["prior_shift"]:
            for row in seed_rows:
                label = method if " + " not in row["model"] else f"{method} + LA (val)"
                for key in ("top1", "top1_known_prior", "top1_em_prior", "em_prior_tv"):
                    if row[key] is None:  # the logit-adjusted copy: plain top-1 only
                        continue
                    shifts.setdefault(f"{label}|{key}", {}).setdefault(row["shift"], []).append(
                        row[key])
    names = list(dict.fromkeys(row["shift"] for row in raw[METHODS[0]]["prior_shift"][0]))
    lines += ["", "| model | metric | " + " | ".join(names) + " |",
              "|---|---|" + "---|" * len(names)]
    for key, by_shift in shifts.items():
        label, metric = key.split("|")
        lines.append(f"| {label} | {metric} | "
                     + " | ".join(f"{statistics.mean(by_shift[n]):.2f}" if metric != "em_prior_tv"
                                  else f"{statistics.mean(by_shift[n]):.3f}" for n in names)
                     + " |")
    return raw, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--runs", type=Path, required=True, help="run folders (kept, reused)")
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = ap.parse_args()
    jobs = [(m, s) for m in args.methods for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        outs = list(pool.map(lambda job: run_one(args.runs, *job), jobs))
    results: dict[str, list[Path]] = {}
    for (method, _), out in zip(jobs, outs):
        results.setdefault(method, []).append(out)
    raw, lines = summarize(results)
    args.out.with_suffix(".json").write_text(json.dumps({"seeds": args.seeds, **raw}, indent=1))
    header = [f"# Long-tail evaluation of the demo, seeds {' '.join(map(str, args.seeds))}", "",
              f"`{' '.join(sys.argv)}` (mean ± std over seeds; corrections fitted on the "
              "embedded validation split, measured on test; head_class = T-shirt/top)", ""]
    args.out.with_suffix(".md").write_text("\n".join(header + lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
