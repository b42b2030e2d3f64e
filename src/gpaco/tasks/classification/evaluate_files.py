"""Metrics (and saved logits) of one checkpoint file or an ensemble of files on a run's split.

Unlike `checkpoint_eval.evaluate_checkpoint` (gpaco checkpoints only, one model), the files may be
the authors' released checkpoints, and several files are evaluated as the papers' ensembles
(the plain sum of their logits). The data come from the first file's config plus `overrides`
(an authors' file has no dataset in it: say `data.dataset=... data.root=...`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from gpaco.data.registry import build_dataset, dataset_options
from gpaco.tasks.classification.datasets import DATASETS
from gpaco.errors import UserError
from gpaco.evaluation.calibration import calibration
from gpaco.evaluation.saved import SavedLogits, labels_path, meta_json, meta_path
from gpaco.tasks.classification.metrics import EvalResult, evaluate_logits, shot_groups

from gpaco.tasks.classification.build import Data, build_data, resolve_device
from gpaco.weights.checkpoint import atomic_write
from gpaco.tasks.classification.checkpoint_eval import check_classes
from gpaco.tasks.classification.training_prior import center_shares, prior_in_loss
from gpaco.config import Config
from gpaco.tasks.classification.restore import LoadedModel, ensemble_from_files, load_model


def load_files(paths: Sequence[str | Path], overrides: Sequence[str] = (),
               recipe: Config | None = None) -> LoadedModel:
    """One file's model, or the logit-sum ensemble of several (`recipe`: see `load_model`)."""
    if not paths:
        raise UserError("give at least one checkpoint")
    if len(paths) == 1:
        return load_model(paths[0], overrides, recipe)
    return ensemble_from_files(paths, overrides, recipe)


def split_loader(cfg: Config, split: str, device: torch.device) -> tuple[Iterable, Data]:
    """The loader of the config's test or val split (no training set is read)."""
    if split not in ("test", "val"):
        raise UserError(f"split must be test or val, not {split!r}")
    data = build_data(cfg, device, with_train=False)
    loader = data.test_loader if split == "test" else data.val_loader
    if loader is None:
        raise UserError("this run has no validation split (data.val_split)")
    return loader, data


@torch.no_grad()
def collect_logits(model: torch.nn.Module, batches: Iterable,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw logits (N, C) in float32 on the CPU and the second element of each batch (labels)."""
    model.eval()
    logits, labels = [], []
    for x, y in batches:
        x = x[0] if isinstance(x, (list, tuple)) else x  # a two-view loader: the first view
        logits.append(model(x.to(device)).float().cpu())
        labels.append(torch.as_tensor(y).cpu())
    if not logits:
        raise UserError("nothing to evaluate: the loader is empty")
    return torch.cat(logits), torch.cat(labels)


def save_logits(path: str | Path, logits: torch.Tensor) -> None:
    """An (N, C) or (N,) tensor as a `.npy` (float32 logits / int64 labels), written atomically."""
    array = logits.detach().cpu().numpy()
    atomic_write(path, lambda f: np.save(f, array))


def evaluate_files(paths: Sequence[str | Path], split: str = "test",
                   overrides: Sequence[str] = (), *, device: str | None = None,
                   logits_npy: str | Path | None = None,
                   recipe: Config | None = None) -> EvalResult:
    """Top-1/5 and many/medium/few of the file(s) on `split`; optionally save the logits.

    Args:
        paths: gpaco checkpoints and/or authors' files; several = their logit-sum ensemble.
        split: "test" or "val".
        overrides: `key=value` config overrides (data location, train.device, ...).
        device: overrides train.device of the config ("auto", "cpu", "cuda", ...).
        logits_npy: save the raw logits (N, C) there, the labels and a description beside
            (`gpaco.evaluation.saved`).
        recipe: the architecture and data of authors' files that bring no gpaco config.
    """
    loaded = load_files(paths, overrides, recipe)
    cfg = loaded.config
    torch_device = resolve_device(device or cfg.train.device)
    loader, data = split_loader(cfg, split, torch_device)
    check_classes(loaded.num_classes, loaded.classes, data.val if split == "val" else data.test,
                  ", ".join(map(str, paths)))
    logits, labels = collect_logits(loaded.model.to(torch_device), loader, torch_device)
    # An authors' file records no training counts: they come from the recipe's training split
    # (never from the evaluated split's own counts); without a recipe they stay unknown (None).
    counts = loaded.class_counts
    if counts is None and recipe is not None:
        counts = training_counts(cfg, loaded.num_classes)
    if logits_npy is not None:
        save_logits(logits_npy, logits)
        save_logits(labels_path(logits_npy), labels)
        shares = center_shares(cfg, counts) if counts else None
        text = meta_json(SavedLogits(logits, labels, split, counts, loaded.classes, cfg.method,
                                     ", ".join(map(str, paths)), prior_in_loss(cfg),
                                     None if shares is None else shares.log().tolist()))
        atomic_write(meta_path(logits_npy), lambda f: f.write(text.encode()))
    result = evaluate_logits(logits, labels, counts)
    result.calibration = calibration(logits, labels, shot_groups(counts) if counts else None)
    return result


def training_counts(cfg: Config, num_classes: int) -> list[int] | None:
    """Images per class of the config's training split, for many / medium / few; None (and a
    line saying why) when that split cannot be read here."""
    try:
        options = dataset_options(cfg.data.dataset, DATASETS)
        train = build_dataset(cfg.data.dataset, root=cfg.data.root, train=True, transform=None,
                              table=DATASETS,
                              **{k: getattr(cfg.data, k) for k in options if hasattr(cfg.data, k)})
    except UserError as err:
        print(f"many / medium / few unknown: the recipe's training split cannot be read ({err})",
              file=sys.stderr)
        return None
    counts = list(train.class_counts)
    if len(counts) != num_classes:
        raise UserError(f"the recipe's training split has {len(counts)} classes, the model "
                        f"{num_classes}")
    return counts
