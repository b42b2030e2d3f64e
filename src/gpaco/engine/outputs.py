"""Files a finished run leaves: per-class accuracy CSV and PNG plots."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from gpaco.metrics import shot_groups

PER_CLASS_CSV = "per_class_accuracy.csv"
PER_CLASS_PNG = "per_class_accuracy.png"
CURVES_PNG = "curves.png"


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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def write_plots(folder: Path, counts: list[int], per_class: list[float | None],
                records: list[dict[str, Any]]) -> None:
    plt = _pyplot()
    order = sorted(range(len(counts)), key=lambda c: -counts[c])
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(range(len(order)), [per_class[c] or 0.0 for c in order], color="tab:blue", width=1.0)
    ax.set_xlabel("classes, most to least frequent in training")
    ax.set_ylabel("test accuracy (%)")
    twin = ax.twinx()
    twin.plot(range(len(order)), [counts[c] for c in order], color="tab:red")
    twin.set_yscale("log")
    twin.set_ylabel("training images (log)", color="tab:red")
    fig.tight_layout()
    fig.savefig(folder / PER_CLASS_PNG, dpi=110)
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot([r["epoch"] + 1 for r in records], [r["train_loss"] for r in records])
    a1.set_xlabel("epoch")
    a1.set_ylabel("training loss")
    evals = [r for r in records if "test" in r]
    for key in ("top1", "many", "medium", "few"):
        pts = [(r["epoch"] + 1, r["test"][key]) for r in evals if r["test"].get(key) is not None]
        if pts:
            a2.plot(*zip(*pts), marker=".", label=key)
    a2.set_xlabel("epoch")
    a2.set_ylabel("test accuracy (%)")
    a2.legend()
    fig.tight_layout()
    fig.savefig(folder / CURVES_PNG, dpi=110)
    plt.close(fig)
