"""Predictions for image files and folders (`gpaco predict`), and logits saved as `.npy`.

`split_logits` saves the raw logits of a run's test (or val) split, in the split's order, with
the labels beside them (`<name>.labels.npy`): the members of an ensemble can then be summed
offline (`gpaco.models.ensemble.sum_logits`).

The CSV has one row per image: `file`, then for each rank r = 1..k the columns `class_r`
(label index), `name_r` (class name where the checkpoint knows it, else empty) and `prob_r`
(softmax probability of the raw logits, no prior).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from gpaco.data._files import load_rgb
from gpaco.data.image_folder import IMG_EXTENSIONS
from gpaco.engine.build import build_data, resolve_device
from gpaco.engine.checkpoint import atomic_write
from gpaco.engine.restore import LoadedModel, ensemble_from_files, load_model, test_transform
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
    def __init__(self, files: Sequence[Path], transform: Callable) -> None:
        self.files, self.transform = list(files), transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.transform(load_rgb(str(self.files[index]))), index


@torch.no_grad()
def collect_logits(model: nn.Module, batches: Iterable,
                   device: torch.device) -> tuple[Tensor, Tensor]:
    """Raw logits (N, C) in float32 on the CPU and the second element of each batch (labels)."""
    model.eval()
    logits, labels = [], []
    for x, y in batches:
        x = x[0] if isinstance(x, (list, tuple)) else x  # a two-view loader: the first view
        logits.append(model(x.to(device)).float().cpu())
        labels.append(torch.as_tensor(y).cpu())
    if not logits:
        raise UserError("nothing to predict: the loader is empty")
    return torch.cat(logits), torch.cat(labels)


def predict_logits(model: nn.Module, files: Sequence[Path], transform: Callable, *,
                   batch_size: int = 64, workers: int = 0,
                   device: torch.device = torch.device("cpu")) -> Tensor:
    """Raw logits (N, C) of `files`, in their order."""
    loader = DataLoader(_ImageFiles(files, transform), batch_size=batch_size, shuffle=False,
                        num_workers=workers)
    logits, order = collect_logits(model.to(device), loader, device)
    assert order.tolist() == list(range(len(files)))
    return logits


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


def save_logits(path: str | Path, logits: Tensor) -> None:
    """Logits (N, C) as a float32 `.npy` (written atomically), e.g. to sum members later."""
    array = logits.detach().float().cpu().numpy()
    atomic_write(path, lambda f: np.save(f, array))


def load_for_prediction(checkpoints: Sequence[str | Path],
                        overrides: Sequence[str] = ()) -> LoadedModel:
    """One checkpoint's model, or the logit-sum ensemble of several."""
    if not checkpoints:
        raise UserError("give at least one checkpoint")
    if len(checkpoints) == 1:
        return load_model(checkpoints[0], overrides)
    return ensemble_from_files(checkpoints, overrides)


def predict_files(checkpoints: Sequence[str | Path], inputs: Sequence[str | Path],
                  output_csv: str | Path, *, k: int = 5, batch_size: int = 64,
                  device: str = "auto", logits_npy: str | Path | None = None,
                  overrides: Sequence[str] = ()) -> int:
    """Predict the images in `inputs` with one model or an ensemble; returns the image count.

    The images go through the (first) checkpoint's test transform.
    """
    if k < 1:
        raise UserError(f"k must be at least 1, not {k}")
    loaded = load_for_prediction(checkpoints, overrides)
    files = list_images(inputs)
    logits = predict_logits(loaded.model, files, test_transform(loaded.config),
                            batch_size=batch_size, device=resolve_device(device))
    write_csv(output_csv, prediction_rows(files, logits, loaded.classes, k))
    if logits_npy is not None:
        save_logits(logits_npy, logits)
    return len(files)


def labels_path(logits_npy: str | Path) -> Path:
    """Where `split_logits` puts the labels of `logits_npy`: x.npy -> x.labels.npy."""
    path = Path(logits_npy)
    return path.with_name(f"{path.stem}.labels.npy")


def split_logits(checkpoints: Sequence[str | Path], output_npy: str | Path, *,
                 split: str = "test", device: str = "auto",
                 overrides: Sequence[str] = ()) -> tuple[Tensor, Tensor]:
    """Save the logits (and labels) of the checkpoint's (or ensemble's) data split.

    The data come from the (first) checkpoint's config with `overrides` (e.g. `data.root=`);
    returns (logits (N, C), labels (N,)).
    """
    if split not in ("test", "val"):
        raise UserError(f"split must be test or val, not {split!r}")
    loaded = load_for_prediction(checkpoints, overrides)
    torch_device = resolve_device(device)
    data = build_data(loaded.config, torch_device, with_train=False)
    loader = data.test_loader if split == "test" else data.val_loader
    if loader is None:
        raise UserError("this run has no validation split (data.val_split)")
    logits, labels = collect_logits(loaded.model.to(torch_device), loader, torch_device)
    save_logits(output_npy, logits)
    array = labels.numpy()
    atomic_write(labels_path(output_npy), lambda f: np.save(f, array))
    return logits, labels
