"""Figures of the long-tail evaluation: reliability diagrams and top-1 against prior shift."""

from __future__ import annotations

from pathlib import Path

from .calibration import CalibrationResult
from .prior_shift import ShiftRow

RELIABILITY_PNG = "reliability.png"
PRIOR_SHIFT_PNG = "prior_shift.png"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def write_reliability(path: Path, result: CalibrationResult, title: str = "") -> None:
    """One panel per scope (overall, many, medium, few): accuracy per confidence bin against
    the diagonal, each bar labelled with its sample count."""
    plt = _pyplot()
    scopes = [s for s in ("overall", "many", "medium", "few") if s in result.reliability]
    fig, axes = plt.subplots(1, len(scopes), figsize=(3.4 * len(scopes), 3.6), squeeze=False)
    width = 1.0 / result.bins
    for ax, scope in zip(axes[0], scopes):
        rel = result.reliability[scope]
        lefts = [b * width for b in range(result.bins)]
        acc = [a if a is not None else 0.0 for a in rel.accuracy]
        ax.bar(lefts, acc, width=width, align="edge", edgecolor="black", linewidth=0.5,
               color="tab:blue", label="accuracy")
        conf = [c if c is not None else 0.0 for c in rel.confidence]
        ax.bar(lefts, [c - a for c, a in zip(conf, acc)], bottom=acc, width=width,
               align="edge", color="tab:red", alpha=0.3, label="gap to confidence")
        for left, a, n in zip(lefts, acc, rel.count):
            if n:
                ax.text(left + width / 2, min(a, 0.9) + 0.02, str(n), ha="center",
                        va="bottom", fontsize=6, rotation=90)
        ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1)
        m = result.metrics[scope] or {}
        ax.set_title(f"{scope}: ECE {m.get('ece', 0):.1f}, n={sum(rel.count)}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("confidence (top label)")
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_shift_plot(path: Path, rows: list[ShiftRow]) -> None:
    """Top-1 of each model (and its prior-adjusted versions) from forward to backward shift."""
    plt = _pyplot()
    shifts = list(dict.fromkeys(r.shift for r in rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    for model in dict.fromkeys(r.model for r in rows):
        mine = {r.shift: r for r in rows if r.model == model}
        line = ax.plot(range(len(shifts)), [mine[s].top1 for s in shifts], marker="o",
                       label=model)[0]
        for field, style in (("top1_known_prior", ":"), ("top1_em_prior", "--")):
            values = [getattr(mine[s], field) for s in shifts]
            if all(v is not None for v in values):
                ax.plot(range(len(shifts)), values, style, color=line.get_color(),
                        label=f"{model}, {field.removeprefix('top1_').replace('_', ' ')}")
    ax.set_xticks(range(len(shifts)), shifts, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("test prior: forward long-tailed (training order) ... backward (reversed)")
    ax.set_ylabel("top-1 (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
