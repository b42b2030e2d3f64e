"""The run directory: creation rules, environment record, metrics log (JSON lines + TensorBoard)."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torchvision

from gpaco.version import __version__
from gpaco.errors import UserError

from gpaco.weights.checkpoint import atomic_write

CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.yaml"


def _looks_like_run(path: Path) -> bool:
    return any((path / name).exists() for name in (CONFIG, CHECKPOINT, METRICS))


def prepare(path: Path, *, resume: bool, overwrite: bool) -> Path | None:
    """Create the run folder; refuse to reuse one unless resuming or explicitly overwriting.

    `overwrite` only ever replaces a folder that holds a gpaco run, never an arbitrary one, and
    does not delete it yet: the old run is set aside and its place returned, for the trainer to
    `discard` once the new run has its first checkpoint or `restore` if it fails before. A run
    folder without a checkpoint (a run that died before its first epoch ended) holds nothing to
    keep: a plain re-run replaces it. OS errors (no permission, read-only, a file in the way)
    are one-line user errors naming the folder.
    """
    if resume and overwrite:
        raise UserError("give --resume or --overwrite, not both")
    try:
        return _prepare(path, resume=resume, overwrite=overwrite)
    except OSError as err:
        raise UserError(f"cannot prepare run directory {path}: {err.strerror or err}") from None


def _prepare(path: Path, *, resume: bool, overwrite: bool) -> Path | None:
    if path.exists() and not path.is_dir():
        raise UserError(f"run directory {path} is a file")
    _check_set_aside(path)
    if resume:
        if not (path / CHECKPOINT).is_file():
            raise UserError(f"nothing to resume: {path / CHECKPOINT} does not exist (a run that "
                            "stopped before its first checkpoint: run it again without --resume)")
        return None
    previous = None
    if path.exists() and any(path.iterdir()):
        unfinished = _looks_like_run(path) and not (path / CHECKPOINT).exists()
        if not overwrite and not unfinished:
            raise UserError(f"run directory {path} exists; use --resume to continue it, "
                            "--overwrite to replace it, or output.dir=... for a new one")
        if not _looks_like_run(path):
            raise UserError(f"refusing to --overwrite {path}: it is not a gpaco run directory")
        if unfinished:
            shutil.rmtree(path)
        else:
            previous = _set_aside(path)
    path.mkdir(parents=True, exist_ok=True)
    return previous


def set_aside_path(path: Path) -> Path:
    """Where --overwrite keeps the run it replaces until the new run's first checkpoint."""
    return path.parent / f".{path.name}.previous"


def _check_set_aside(path: Path) -> None:
    """A run set aside by an --overwrite that was killed before the new run's first checkpoint
    is the only copy of that run: no run starts or resumes in `path` until the user says
    which to keep."""
    previous = set_aside_path(path)
    if previous.exists():
        raise UserError(f"{previous} holds the run an interrupted --overwrite of {path} set "
                        f"aside; to restore it: rm -rf {path} && mv {previous} {path}; to "
                        f"keep the new one instead: rm -rf {previous}")


def _set_aside(path: Path) -> Path:
    previous = set_aside_path(path)
    path.rename(previous)
    return previous


def discard(previous: Path) -> None:
    """The new run has its first checkpoint: the replaced run can go."""
    shutil.rmtree(previous, ignore_errors=True)


def restore(path: Path, previous: Path) -> None:
    """The new run failed before its first checkpoint: put the replaced run back."""
    shutil.rmtree(path, ignore_errors=True)
    previous.rename(path)


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def _git_hash() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    env = {
        "gpaco": __version__, "git": _git_hash(), "python": sys.version.split()[0],
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "platform": platform.platform(), "machine": platform.node(),
        "cuda": torch.version.cuda, "argv": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_count"] = torch.cuda.device_count()
    return env


class MetricsLog:
    """Appends one JSON object per line and mirrors scalars to TensorBoard (if enabled)."""

    def __init__(self, folder: Path, tensorboard: bool):
        self.path = folder / METRICS
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(folder / "tensorboard"))

    def write(self, record: dict[str, Any], step: int) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in _flatten(record).items():
                if isinstance(value, (int, float)) and key != "epoch":
                    self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        else:
            out[prefix + key] = value
    return out


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    """The records of metrics.jsonl, epochs counted from 1. A broken last line (what a kill
    during the append leaves) is left out; a broken line before it means the file was edited:
    a user error. Files of gpaco before checkpoint format 2 counted from 0: shifted here."""
    path = folder / METRICS
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise UserError(f"{path} line {number} is not a JSON record") from None
    if records and records[0].get("epoch") == 0:
        for record in records:
            record["epoch"] += 1
    return records


def truncate_metrics(folder: Path, after_epoch: int) -> None:
    """On resume, drop records of epochs the checkpoint does not contain (a killed epoch)."""
    records = [r for r in read_metrics(folder) if r.get("epoch", after_epoch + 1) <= after_epoch]
    write_text_atomic(folder / METRICS, "".join(json.dumps(r) + "\n" for r in records))
