"""`evaluate_suite`: top-1 error of a 1000-class ImageNet model on a robustness benchmark.

Suites:
- "imagenet-c": the 75 folders of the 15 corruptions x 5 severities (plus, on request, the 4
  extra corruptions, which never enter the mCE); the error of each folder, each corruption's
  mean, the paper's "mCE" (unnormalised) and Hendrycks' AlexNet-normalised mCE ("rel. mCE").
- "imagenet-r": 200 classes; the model's 1000 logits are restricted to the 200 ImageNet-R
  columns (sorted-wnid order) before the argmax, as hendrycks/imagenet-r `eval.py`.
- "imagenet-sketch" and "imagenet-val": all 1000 classes and logits.
Protocol as the authors' evaluation: batch 100, float32, top-1, preprocessing per
`gpaco.tasks.classification.robustness.preprocess`. Everything that is missing (a corruption, a severity, a class
folder) is an error naming it, unless `partial=True`; then the result lists what was not
evaluated and is marked incomplete.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from gpaco.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from gpaco.errors import UserError
from gpaco.tasks.classification.robustness.corruptions import CATEGORY, CORRUPTIONS, SEVERITIES
from gpaco.tasks.classification.robustness.layout import ClassImages, imagenet_c_folders, scan_class_folders
from gpaco.tasks.classification.robustness.mce import corruption_errors, mce_alexnet, mce_unnormalized
from gpaco.tasks.classification.robustness.preprocess import robustness_transform
from gpaco.tasks.classification.robustness.result import PartResult, SuiteResult
from gpaco.tasks.classification.robustness.wnids import imagenet_r_indices, imagenet_r_wnids, imagenet_wnids

SUITES = ("imagenet-c", "imagenet-r", "imagenet-sketch", "imagenet-val")
NUM_LOGITS = 1000


class LabeledImages(Dataset):
    """(transform(RGB image), label) over a list of (path, label) pairs."""

    def __init__(self, samples: Sequence[tuple[str, int]], transform: Callable) -> None:
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path, label = self.samples[i]
        with Image.open(path) as img:
            return self.transform(img.convert("RGB")), label


def _missing_error(where: str, missing: Sequence[str]) -> UserError:
    shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
    return UserError(f"{where}: missing {shown}; pass partial=True to evaluate what is there")


@torch.no_grad()
def _count_correct(model: nn.Module, loader: DataLoader, device: torch.device,
                   columns: Tensor | None) -> int:
    """Top-1 hits; with `columns`, the argmax runs over those logits only (ImageNet-R)."""
    correct = 0
    for images, labels in loader:
        logits = model(images.to(device))
        if logits.ndim != 2 or logits.shape[1] != NUM_LOGITS:
            raise UserError(f"the model must map images to {NUM_LOGITS} ImageNet logits, "
                            f"got output shape {tuple(logits.shape)}")
        logits = logits.float().cpu()
        pred = columns[logits[:, columns].argmax(1)] if columns is not None else logits.argmax(1)
        correct += int((pred == labels).sum())
    return correct


def _evaluate_part(name: str, found: ClassImages, ctx: dict[str, Any]) -> PartResult:
    loader = DataLoader(LabeledImages(found.samples, ctx["transform"]),
                        batch_size=ctx["batch_size"], num_workers=ctx["num_workers"],
                        shuffle=False)
    correct = _count_correct(ctx["model"], loader, ctx["device"], ctx["columns"])
    return PartResult(name, len(found.samples), correct, list(found.missing))


def _scan(folder: Path, wnids: Sequence[str], partial: bool) -> ClassImages:
    label_of = {w: i for i, w in enumerate(imagenet_wnids())}
    found = scan_class_folders(folder, wnids, label_of)
    if found.missing and not partial:
        raise _missing_error(f"{folder}", [f"class folder {w}" for w in found.missing])
    if not found.samples:
        raise UserError(f"{folder} has no images of the expected classes")
    return found


def _imagenet_c(root: Path, ctx: dict[str, Any], corruptions: Sequence[str],
                severities: Sequence[int], partial: bool, progress: bool) -> SuiteResult:
    unknown = [c for c in corruptions if c not in CATEGORY]
    if unknown:
        raise UserError(f"unknown ImageNet-C corruption {unknown[0]!r}; known: "
                        f"{', '.join(CATEGORY)}")
    left_out = [c for c in CORRUPTIONS if c not in corruptions]
    if not partial and (left_out or tuple(severities) != SEVERITIES):
        raise UserError("the mCE needs all 15 corruptions x severities 1-5; pass partial=True "
                        "to evaluate a subset")
    folders, missing = imagenet_c_folders(root, corruptions, severities)
    if missing and not partial:
        raise _missing_error(f"ImageNet-C at {root}", missing)
    # Every folder is scanned before any is evaluated: a gap fails in seconds, not hours.
    scans = {key: _scan(path, imagenet_wnids(), partial) for key, path in folders.items()}
    parts = [
        _evaluate_part(f"{c}/{s}", scans[(c, s)], ctx)
        for c, s in tqdm(scans, desc="ImageNet-C", unit="folder", disable=not progress)
    ]
    errors = {(p.name.split("/")[0], int(p.name.split("/")[1])): p.top1_error for p in parts}
    mce_errors = {k: v for k, v in errors.items() if k[0] in CORRUPTIONS}
    summary: dict[str, Any] = {"corruption_errors": corruption_errors(errors)}
    if mce_errors:
        summary["mce_unnormalized"] = mce_unnormalized(mce_errors)
        summary["mce_alexnet"] = mce_alexnet(mce_errors)
    not_evaluated = ([f"{c} (not requested)" for c in left_out]
                     + [f"{c}/{s} (not requested)" for c in corruptions if c in CORRUPTIONS
                        for s in SEVERITIES if s not in severities]
                     + missing
                     + [f"{p.name}: {len(p.missing_classes)} class folder(s)"
                        for p in parts if p.missing_classes])
    complete = not not_evaluated
    return SuiteResult("imagenet-c", ctx["protocol"], repr(ctx["transform"]), complete, parts,
                       not_evaluated, summary)


def _single_part(suite: str, root: Path, ctx: dict[str, Any], partial: bool) -> SuiteResult:
    wnids = imagenet_r_wnids() if suite == "imagenet-r" else imagenet_wnids()
    found = _scan(root, wnids, partial)
    part = _evaluate_part(suite, found, ctx)
    summary = {"top1_error": part.top1_error, "top1_accuracy": 1.0 - part.top1_error}
    return SuiteResult(suite, ctx["protocol"], repr(ctx["transform"]), not part.missing_classes,
                       [part], [f"class folder {w}" for w in part.missing_classes], summary)


def evaluate_suite(
    model: nn.Module,
    suite: str,
    data_root: str | Path,
    *,
    protocol: str = "authors",
    partial: bool = False,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    batch_size: int = 100,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    interpolation: str = "bicubic",
    image_size: int = 224,
    resize_size: int = 256,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    progress: bool = True,
) -> SuiteResult:
    """Evaluate `model` (images -> 1000 ImageNet logits) on one robustness suite.

    Args:
        model: any `nn.Module`; it is put in eval mode for the run and restored after.
        suite: one of SUITES.
        data_root: the dataset's root (for ImageNet-C the folder holding the corruption or
            category folders; otherwise the folder of wnid folders).
        protocol: "authors" (Resize + CenterCrop everywhere) or "hendrycks" (ImageNet-C only
            centre-cropped); see `gpaco.tasks.classification.robustness.preprocess`.
        partial: evaluate what exists instead of raising on a missing folder; the result says
            what was left out and `complete` is False.
        corruptions, severities: ImageNet-C folders to evaluate; the extra corruptions may be
            added (reported, not in the mCE). A subset of the 15 needs `partial=True`.
        batch_size, num_workers: DataLoader settings (the authors: batch 100).
        device: where the model runs; default the device of its first parameter (else CPU).
        interpolation: "bicubic" (ViTs) or "bilinear" (ResNets) for the resize.
        image_size, resize_size: CenterCrop and Resize sides (224 and 256).
        mean, std: normalisation (ImageNet's).
        progress: a tqdm bar over the ImageNet-C folders.

    Raises:
        UserError: unknown suite/protocol, missing data (unless partial), a model whose output
            is not (B, 1000).
    """
    if suite not in SUITES:
        raise UserError(f"unknown robustness suite {suite!r}; choose one of {', '.join(SUITES)}")
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    transform = robustness_transform(suite, protocol, interpolation=interpolation,
                                     image_size=image_size, resize_size=resize_size,
                                     mean=mean, std=std)
    columns = torch.tensor(imagenet_r_indices()) if suite == "imagenet-r" else None
    ctx = {"model": model, "device": torch.device(device), "transform": transform,
           "batch_size": batch_size, "num_workers": num_workers, "columns": columns,
           "protocol": protocol}
    was_training = model.training
    model.eval()
    try:
        if suite == "imagenet-c":
            return _imagenet_c(Path(data_root), ctx, corruptions, severities, partial, progress)
        return _single_part(suite, Path(data_root), ctx, partial)
    finally:
        model.train(was_training)
