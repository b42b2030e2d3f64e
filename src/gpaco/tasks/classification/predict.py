"""Predictions for image files and folders (`gpaco predict`), optionally their logits (.npy).

The CSV has one row per image: `file`, then for each rank r = 1..k the columns `class_r`
(label index), `name_r` (class name where the checkpoint knows it, else empty) and `prob_r`
(softmax probability of the raw logits, no prior).
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from gpaco.data.image_files import ON_BAD_IMAGE, load_rgb
from gpaco.data.image_folder import IMG_EXTENSIONS
from gpaco.tasks.classification.build import resolve_device
from gpaco.weights.checkpoint import atomic_write
from gpaco.config import Config
from gpaco.tasks.classification.evaluate_files import collect_logits, load_files, save_logits
from gpaco.tasks.classification.restore import eval_transform
from gpaco.errors import UserError


def list_images(inputs: Sequence[str | Path]) -> list[Path]:
    """The image files named, and those under the folders named (recursive, sorted)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
            if not found:
                raise UserError(f"no images under {item} (extensions {', '.join(IMG_EXTENSIONS)})")
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise UserError(f"no such file or folder: {item}")
    return files


class _ImageFiles(Dataset):
    """(transform(image), index); with on_bad_image="skip" an unreadable file gives a blank
    image and index -1 - i, for `predict_logits` to leave it out."""

    def __init__(self, files: Sequence[Path], transform: Callable,
                 on_bad_image: str = "error") -> None:
        if on_bad_image not in ON_BAD_IMAGE:
            raise UserError(f"on_bad_image must be one of {ON_BAD_IMAGE}, not {on_bad_image!r}")
        self.files, self.transform, self.on_bad_image = list(files), transform, on_bad_image

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        try:
            return self.transform(load_rgb(str(self.files[index]))), index
        except UserError as err:
            if self.on_bad_image == "error":
                raise UserError(f"{err}; leave unreadable images out with "
                                "--on-bad-image skip") from None
        return torch.zeros_like(self.transform(Image.new("RGB", (8, 8)))), -1 - index


def predict_logits(model: nn.Module, files: Sequence[Path], transform: Callable, *,
                   batch_size: int = 64, workers: int = 0,
                   device: torch.device = torch.device("cpu"),
                   on_bad_image: str = "error") -> tuple[Tensor, list[int]]:
    """Raw logits (N, C) of the readable `files`, in their order, and those files' indices
    (every index unless on_bad_image="skip" left unreadable ones out)."""
    loader = DataLoader(_ImageFiles(files, transform, on_bad_image), batch_size=batch_size,
                        shuffle=False, num_workers=workers)
    logits, order = collect_logits(model.to(device), loader, device)
    readable = order >= 0
    if not readable.any():
        raise UserError(f"none of the {len(files)} images can be read")
    return logits[readable], order[readable].tolist()


def prediction_rows(files: Sequence[Path], logits: Tensor, classes: Sequence[str] | None,
                    k: int) -> list[list[str]]:
    """Header and one row per file: file, then class / name / probability of the top k."""
    k = min(k, logits.shape[1])
    probs, top = logits.float().softmax(dim=1).topk(k, dim=1)
    header = ["file"] + [f"{c}_{r}" for r in range(1, k + 1) for c in ("class", "name", "prob")]
    rows = [header]
    for f, p_row, c_row in zip(files, probs.tolist(), top.tolist()):
        row = [str(f)]
        for p, c in zip(p_row, c_row):
            row += [str(c), classes[c] if classes else "", f"{p:.6f}"]
        rows.append(row)
    return rows


def write_csv(path: str | Path, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    atomic_write(path, lambda f: f.write(buffer.getvalue().encode()))


def predict_files(checkpoints: Sequence[str | Path], inputs: Sequence[str | Path],
                  output_csv: str | Path, *, k: int = 5, batch_size: int = 64,
                  device: str = "auto", logits_npy: str | Path | None = None,
                  overrides: Sequence[str] = (), recipe: Config | None = None,
                  on_bad_image: str = "error") -> int:
    """Predict the images in `inputs` with one model or an ensemble; returns the count of
    images predicted. on_bad_image="skip" leaves unreadable files out of the CSV and names
    each on stderr.

    The images go through the (first) checkpoint's test transform.
    """
    if k < 1:
        raise UserError(f"k must be at least 1, not {k}")
    loaded = load_files(checkpoints, overrides, recipe)
    files = list_images(inputs)
    logits, kept = predict_logits(loaded.model, files, eval_transform(loaded.config),
                                  batch_size=batch_size, device=resolve_device(device),
                                  on_bad_image=on_bad_image)
    for i in sorted(set(range(len(files))) - set(kept)):
        print(f"skipped unreadable image {files[i]}", file=sys.stderr)
    files = [files[i] for i in kept]
    write_csv(output_csv, prediction_rows(files, logits, loaded.classes, k))
    if logits_npy is not None:
        save_logits(logits_npy, logits)
    return len(files)


def top1_lines(output_csv: str | Path, limit: int = 20) -> list[str]:
    """`file: name (class c) p` of each row's top class, for the first `limit` rows of a CSV
    `predict_files` wrote (what `gpaco predict` prints)."""
    with open(output_csv, newline="") as f:
        rows = list(csv.reader(f))[1:]
    lines = [f"{r[0]}: {r[2] or 'class ' + r[1]}{f' (class {r[1]})' if r[2] else ''} "
             f"p={float(r[3]):.3f}" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more in {output_csv}")
    return lines
