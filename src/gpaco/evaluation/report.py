"""Tables and lines of the long-tail evaluation (markdown and console)."""

from __future__ import annotations

from typing import Any

from .calibration import GROUPS
from .prior_shift import ShiftRow

_NAMES = {"ece": "ECE", "adaptive_ece": "adaptive ECE", "mce": "MCE", "nll": "NLL",
          "brier": "Brier", "classwise_ece": "class-wise ECE"}


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def calibration_line(metrics: dict[str, Any] | None) -> str:
    """One console line: overall ECE / adaptive ECE / MCE / NLL / Brier and ECE per group."""
    if not metrics or not metrics.get("overall"):
        return "calibration: -"
    o = metrics["overall"]
    groups = " ".join(f"{g} {_num((metrics.get(g) or {}).get('ece'))}" for g in GROUPS)
    return (f"calibration: ECE {_num(o['ece'])} adaptive ECE {_num(o['adaptive_ece'])} MCE "
            f"{_num(o['mce'])} NLL {_num(o['nll'], 3)} Brier {_num(o['brier'], 3)} class-wise "
            f"ECE {_num(o['classwise_ece'])} | ECE by group: {groups}")


def calibration_table(metrics: dict[str, Any]) -> list[str]:
    """Markdown: one row per scope (overall, many, medium, few), one column per metric."""
    lines = ["| scope | " + " | ".join(_NAMES.values()) + " |", "|---|" + "---|" * len(_NAMES)]
    for scope in ("overall", *GROUPS):
        m = metrics.get(scope)
        cells = [_num(m[k], 3 if k in ("nll", "brier") else 2) if m else "-" for k in _NAMES]
        lines.append(f"| {scope} | " + " | ".join(cells) + " |")
    return lines


def posthoc_table(variants: dict[str, dict[str, Any]], head: str) -> list[str]:
    """Markdown: test metrics of each post-hoc variant (before = "none")."""
    lines = [f"| correction | top-1 | many | medium | few | {head} | ECE | ECE many | ECE medium "
             "| ECE few | NLL |", "|---|" + "---|" * 10]
    for name, v in variants.items():
        cal = v["calibration"]
        ece = [_num((cal.get(s) or {}).get("ece")) for s in ("overall", *GROUPS)]
        lines.append(f"| {name} | {_num(v['top1'])} | {_num(v['many'])} | "
                     f"{_num(v['medium'])} | {_num(v['few'])} | "
                     f"{_num(v['head_class'])} | {' | '.join(ece)} | "
                     f"{_num(cal['overall']['nll'], 3)} |")
    return lines


def shift_table(rows: list[ShiftRow]) -> list[str]:
    """Markdown: one row per model and test prior."""
    lines = ["| model | test prior | images | top-1 | top-1, known prior | top-1, EM prior | "
             "EM prior error (TV) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.model} | {r.shift} | {r.samples} | {_num(r.top1)} | "
                     f"{_num(r.top1_known_prior)} | {_num(r.top1_em_prior)} | "
                     f"{_num(r.em_prior_tv, 4)} |")
    return lines
