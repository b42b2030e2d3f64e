"""The result files a finished run leaves (per-class CSV, plots) and `gpaco report RUN_DIR`,
the markdown summary of a run folder."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gpaco.errors import UserError
from gpaco.evaluation.plots import RELIABILITY_PNG
from gpaco.evaluation.report import calibration_table
from gpaco.tasks.classification.metrics import format_pct, shot_groups

from gpaco.train import run_dir as rd
from gpaco.train.run_record import read_changes
PER_CLASS_CSV = "per_class_accuracy.csv"
PER_CLASS_PNG = "per_class_accuracy.png"
CURVES_PNG = "curves.png"
PICTURES = (CURVES_PNG, PER_CLASS_PNG, RELIABILITY_PNG)  # in the order the report shows them


def _group_of(class_counts: list[int]) -> dict[int, str]:
    return {c: g for g, idx in shot_groups(class_counts).items() for c in idx}


def write_per_class_csv(folder: Path, classes: list[str], counts: list[int],
                        per_class: list[float | None]) -> None:
    group = _group_of(counts)
    with (folder / PER_CLASS_CSV).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "name", "train_images", "group", "accuracy"])
        for c, (name, n, acc) in enumerate(zip(classes, counts, per_class)):
            w.writerow([c, name, n, group[c], "" if acc is None else f"{acc:.4f}"])


def _group_boundaries(ax: Any, sorted_counts: list[int]) -> None:
    """Dashed lines between the many, medium and few-shot classes (classes sorted by count)."""
    groups = shot_groups(sorted_counts)
    cuts = (len(groups["many"]), len(groups["many"]) + len(groups["medium"]))
    for cut, label in zip(cuts, ("many | medium", "medium | few")):
        if 0 < cut < len(sorted_counts):
            ax.axvline(cut - 0.5, color="grey", linestyle="--", linewidth=1)
            ax.text(cut - 0.5, 98, label, ha="center", va="top", fontsize=7, color="grey")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def write_plots(folder: Path, counts: list[int], per_class: list[float | None],
                records: list[dict[str, Any]], classes: list[str] | None = None) -> None:
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    order = sorted(range(len(counts)), key=lambda c: -counts[c])
    fig, ax = plt.subplots(figsize=(max(9, len(order) * 0.25), 4.2))
    acc = [per_class[c] for c in order]
    ax.bar(range(len(order)), [a or 0.0 for a in acc], color="tab:blue", width=0.9)
    # a 0 % class draws no bar: mark it so that it is not mistaken for a missing class
    zeros = [i for i, a in enumerate(acc) if a == 0]
    ax.plot(zeros, [0] * len(zeros), "v", color="black", label="0 % accuracy" if zeros else None)
    _group_boundaries(ax, [counts[c] for c in order])
    if classes is not None and len(order) <= 60:
        ax.set_xticks(range(len(order)), [classes[c] for c in order], rotation=60, ha="right",
                      fontsize=7)
    else:
        ax.set_xlabel("classes, most to least frequent in training")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    twin = ax.twinx()
    twin.plot(range(len(order)), [counts[c] for c in order], color="tab:red")
    twin.set_yscale("log")
    twin.set_ylabel("training images (log)", color="tab:red")
    fig.tight_layout()
    fig.savefig(folder / PER_CLASS_PNG, dpi=110)
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot([r["epoch"] for r in records], [r["train_loss"] for r in records])
    a1.set_xlabel("epoch")
    a1.set_ylabel("training loss")
    for axis in (a1, a2):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    evals = [r for r in records if "test" in r]
    for key in ("top1", "many", "medium", "few"):
        pts = [(r["epoch"], r["test"][key]) for r in evals if r["test"].get(key) is not None]
        if pts:
            a2.plot(*zip(*pts), marker=".", label=key)
    a2.set_xlabel("epoch")
    a2.set_ylabel("test accuracy (%)")
    a2.legend()
    fig.tight_layout()
    fig.savefig(folder / CURVES_PNG, dpi=110)
    plt.close(fig)


# The metrics of a run's summaries are its task's (train/task.py: `summary`); the table shows
# their numbers, in order, under these names.
_HEADERS = {"top1": "top-1", "top5": "top-5", "miou": "mIoU (%)", "macc": "mAcc (%)",
            "aacc": "aAcc (%)"}
_CLASSIFICATION = ("top1", "top5", "many", "medium", "few")


def _columns(metrics: dict | None) -> list[str]:
    if not metrics:
        return list(_CLASSIFICATION)
    return [k for k, v in metrics.items() if not isinstance(v, (list, dict, str))]


def _last_evaluation(records: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """The split name and record of the last held-out evaluation in metrics.jsonl: "test" in
    a run that also validates (a record holds both), else the latest of "test" and a
    segmentation run's "val" (runs before issue 22 called it "test", also when resumed since)."""
    validates = any("val" in r and "test" in r for r in records)
    for r in reversed(records):
        for key in ("test",) if validates else ("test", "val"):
            if key in r:
                return key, r
    return None


def _row(label: str, m: dict, columns: list[str]) -> str:
    return f"| {label} | " + " | ".join(format_pct(m.get(k)) for k in columns) + " |"


def render(folder: Path, pictures: Mapping[str, Sequence[str]]) -> str:
    """The markdown report of a run folder; `pictures`: each task's picture files, in order."""
    if not (folder / rd.CONFIG).is_file():
        raise UserError(f"{folder} is not a gpaco run directory (no {rd.CONFIG})")
    cfg = yaml.safe_load((folder / rd.CONFIG).read_text())
    records = rd.read_metrics(folder)
    summary_path = folder / rd.SUMMARY
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    env_path = folder / "environment.json"
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    done = records[-1]["epoch"] if records else 0
    lines = [f"# {cfg['name']}", "",
             f"- method **{cfg['method']}**, dataset `{cfg['data']['dataset']}`, backbone "
             f"`{cfg['model']['backbone']}`",
             f"- epochs {done}/{cfg['schedule']['epochs']}, batch {cfg['train']['batch_size']}, "
             f"lr {cfg['optim']['lr']}",
             f"- torch {env.get('torch', '?')}, device {env.get('gpu', 'cpu')}, "
             f"git {str(env.get('git'))[:10]}"]
    for change in read_changes(folder):
        lines.append(f"- changed by --resume from epoch {change['epoch']}: " + ", ".join(
            f"{k} {old} -> {new}" for k, (old, new) in change["changes"].items()))
    seconds = sum(r.get("epoch_seconds", 0.0) + r.get("eval_seconds", 0.0) for r in records)
    if records:  # every session's epochs (a resumed run's summary holds its last session)
        lines.append(f"- training time {seconds / 60:.1f} min over {len(records)} epochs")
    last = _last_evaluation(records)
    columns = _columns(summary["last"] if summary else last[1][last[0]] if last else None)
    lines += ["", "| evaluation | " + " | ".join(_HEADERS.get(k, k) for k in columns) + " |",
              "|---|" + "---|" * len(columns)]
    if summary:
        lines.append(_row(f"{summary.get('split', 'test')}, last epoch ({summary['epochs']})",
                          summary["last"], columns))
        best = summary.get("best_on_val")
        if best:
            lines.append(_row(f"val, best epoch ({best['epoch']})", best["val"], columns))
            lines.append(_row("test at that epoch", best["test"], columns))
    elif last:
        split, record = last
        lines.append(_row(f"{split}, epoch {record['epoch']} (unfinished)", record[split],
                          columns))
    calibration = (summary or {}).get("last", {}).get("calibration")
    if calibration:
        lines += ["", "Calibration on test, last epoch (ECEs in %, 15 bins; a sample counts in "
                  "the group of its true class):", "", *calibration_table(calibration)]
    for png in pictures.get(cfg.get("task", "classification"), ()):
        if (folder / png).is_file():
            lines += ["", f"![{png}]({png})"]
    return "\n".join(lines) + "\n"


def write_report(folder: Path, pictures: Mapping[str, Sequence[str]]) -> str:
    text = render(folder, pictures)
    (folder / "report.md").write_text(text)
    return text
