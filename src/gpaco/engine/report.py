"""`gpaco report RUN_DIR`: a short markdown summary of a run folder."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from gpaco.errors import UserError
from gpaco.metrics import format_pct

from . import run_dir as rd
from .outputs import CURVES_PNG, PER_CLASS_PNG


_COLUMNS = ("top1", "top5", "many", "medium", "few")


def _row(label: str, m: dict) -> str:
    return f"| {label} | " + " | ".join(format_pct(m.get(k)) for k in _COLUMNS) + " |"


def render(folder: Path) -> str:
    if not (folder / rd.CONFIG).is_file():
        raise UserError(f"{folder} is not a gpaco run directory (no {rd.CONFIG})")
    cfg = yaml.safe_load((folder / rd.CONFIG).read_text())
    records = rd.read_metrics(folder)
    summary_path = folder / rd.SUMMARY
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    env_path = folder / "environment.json"
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    done = records[-1]["epoch"] + 1 if records else 0
    lines = [f"# {cfg['name']}", "",
             f"- method **{cfg['method']}**, dataset `{cfg['data']['dataset']}`, backbone "
             f"`{cfg['model']['backbone']}`",
             f"- epochs {done}/{cfg['schedule']['epochs']}, batch {cfg['train']['batch_size']}, "
             f"lr {cfg['optim']['lr']}",
             f"- torch {env.get('torch', '?')}, device {env.get('gpu', 'cpu')}, "
             f"git {str(env.get('git'))[:10]}"]
    if summary:
        lines.append(f"- training time {summary['train_seconds'] / 60:.1f} min (this session)")
    lines += ["", "| evaluation | top-1 | top-5 | many | medium | few |",
              "|---|---|---|---|---|---|"]
    if summary:
        lines.append(_row(f"test, last epoch ({summary['epochs']})", summary["last"]))
        best = summary.get("best_on_val")
        if best:
            lines.append(_row(f"val, best epoch ({best['epoch'] + 1})", best["val"]))
            lines.append(_row("test at that epoch", best["test"]))
    else:
        evals = [r for r in records if "test" in r]
        if evals:
            lines.append(_row(f"test, epoch {evals[-1]['epoch'] + 1} (unfinished)", evals[-1]["test"]))
    for png in (CURVES_PNG, PER_CLASS_PNG):
        if (folder / png).is_file():
            lines += ["", f"![{png}]({png})"]
    return "\n".join(lines) + "\n"


def write_report(folder: Path) -> str:
    text = render(folder)
    (folder / "report.md").write_text(text)
    return text
