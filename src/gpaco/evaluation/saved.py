"""Saved logits with what evaluating them needs: `x.npy` (N, C) float32 logits,
`x.labels.npy` (N,) labels and `x.meta.json` (split, training class counts, class names, method,
source files, whether the loss added the log prior, PaCo / GPaCo's log center shares). `gpaco eval --save-logits x.npy` writes all three, so calibration, post-hoc
corrections and prior-shift suites can be recomputed without the model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gpaco.errors import UserError


@dataclass
class SavedLogits:
    logits: torch.Tensor  # (N, C) float32
    labels: torch.Tensor  # (N,) int64
    split: str  # "test" or "val"
    class_counts: list[int] | None  # training images per class; None: unknown
    classes: list[str] | None
    method: str | None  # the training method
    source: str  # the checkpoint file(s) or the logits file
    prior_in_loss: bool | None = None  # training added log prior: logits target a balanced prior
    center_log_weights: list[float] | None = None  # PaCo / GPaCo: log center share per class


def labels_path(logits_npy: str | Path) -> Path:
    """Where the labels of `logits_npy` go: x.npy -> x.labels.npy."""
    path = Path(logits_npy)
    return path.with_name(f"{path.stem}.labels.npy")


def meta_path(logits_npy: str | Path) -> Path:
    """Where the description of `logits_npy` goes: x.npy -> x.meta.json."""
    path = Path(logits_npy)
    return path.with_name(f"{path.stem}.meta.json")


def meta_json(saved: SavedLogits) -> str:
    fields = asdict(saved)
    return json.dumps({k: v for k, v in fields.items() if k not in ("logits", "labels")},
                      indent=1)


def read_saved(path: str | Path) -> SavedLogits:
    """The logits, labels and description that `--save-logits` wrote at `path`."""
    path = Path(path)
    files = (path, labels_path(path), meta_path(path))
    for f in files:
        if not f.is_file():
            raise UserError(f"{f} does not exist (gpaco eval --save-logits {path.name} writes "
                            f"{', '.join(x.name for x in files)})")
    try:
        logits = np.load(path, allow_pickle=False)
        labels = np.load(files[1], allow_pickle=False)
        meta = json.loads(files[2].read_text())
    except (ValueError, OSError) as e:
        raise UserError(f"cannot read {path} and its labels / meta: {type(e).__name__}: "
                        f"{e}".replace("\n", " ")) from None
    if logits.ndim != 2 or labels.shape != (len(logits),):
        raise UserError(f"{path} holds {logits.shape} logits and {files[1].name} "
                        f"{labels.shape} labels: expected (N, C) and (N,)")
    if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise UserError(f"{files[1]} has labels outside 0..{logits.shape[1] - 1}")
    if meta.get("split") not in ("test", "val"):
        raise UserError(f"{files[2]}: split must be test or val, not {meta.get('split')!r}")
    return SavedLogits(torch.from_numpy(logits).float(), torch.from_numpy(labels).long(),
                       meta["split"], meta.get("class_counts"), meta.get("classes"),
                       meta.get("method"), str(path), meta.get("prior_in_loss"),
                       meta.get("center_log_weights"))
