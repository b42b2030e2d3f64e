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

from gpaco.data.image_files import ON_BAD_IMAGE, load_rgb
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
    """(transform(RGB image), label, readable) over a list of (path, label) pairs.

    on_bad_image="skip" (as training's `data.on_bad_image`) hands an unreadable file on as a
    zero image marked unreadable, for the count to leave it out and the result to name it;
    "error" stops with one line naming the file."""

    def __init__(self, samples: Sequence[tuple[str, int]], transform: Callable,
                 on_bad_image: str = "error") -> None:
        if on_bad_image not in ON_BAD_IMAGE:
            raise UserError(f"on_bad_image must be one of {ON_BAD_IMAGE}, not {on_bad_image!r}")
        self.samples = list(samples)
        self.transform = transform
        self.on_bad_image = on_bad_image

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int, int]:
        path, label = self.samples[i]
        try:
            return self.transform(load_rgb(path)), label, i
        except UserError as err:
            if self.on_bad_image == "error":
                raise UserError(f"{err}; evaluate without it with --on-bad-image skip") from None
        blank = self.transform(Image.new("RGB", (8, 8)))
        return torch.zeros_like(blank), label, -1 - i


def _missing_error(where: str, missing: Sequence[str]) -> UserError:
    shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
    return UserError(f"{where}: missing {shown}; evaluate what is there with --partial "
                     "(partial=True in Python)")


@torch.no_grad()
def _count_correct(model: nn.Module, loader: DataLoader, device: torch.device,
                   columns: Tensor | None) -> tuple[int, list[int]]:
    """Top-1 hits and the indices of the unreadable samples left out; with `columns`, the
    argmax runs over those logits only (ImageNet-R)."""
    correct, unreadable = 0, []
    for images, labels, index in loader:
        logits = model(images.to(device))
        if logits.ndim != 2 or logits.shape[1] != NUM_LOGITS:
            raise UserError(f"the model must map images to {NUM_LOGITS} ImageNet logits, "
                            f"got output shape {tuple(logits.shape)}")
        logits = logits.float().cpu()
        pred = columns[logits[:, columns].argmax(1)] if columns is not None else logits.argmax(1)
        readable = index >= 0
        correct += int(((pred == labels) & readable).sum())
        unreadable += (-1 - index[~readable]).tolist()
    return correct, unreadable


def _evaluate_part(name: str, found: ClassImages, ctx: dict[str, Any]) -> PartResult:
    loader = DataLoader(LabeledImages(found.samples, ctx["transform"], ctx["on_bad_image"]),
                        batch_size=ctx["batch_size"], num_workers=ctx["num_workers"],
                        shuffle=False)
    correct, unreadable = _count_correct(ctx["model"], loader, ctx["device"], ctx["columns"])
    images = len(found.samples) - len(unreadable)
    if not images:
        raise UserError(f"{name}: none of its {len(found.samples)} images can be read")
    return PartResult(name, images, correct, list(found.missing),
                      [found.samples[i][0] for i in unreadable])


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
        raise UserError("the mCE needs all 15 corruptions x severities 1-5; evaluate a subset "
                        "with --partial (partial=True in Python)")
    folders, missing = imagenet_c_folders(root, corruptions, severities)
    if missing and not partial:
        raise _missing_error(f"ImageNet-C at {root}", missing)
    if not folders:  # an evaluation of 0 images has no number to report
        raise UserError(f"ImageNet-C at {root}: none of the requested corruption folders "
                        f"exists ({', '.join(corruptions[:5])}{' ...' if len(corruptions) > 5 else ''}); "
                        "is --data-root the ImageNet-C folder?")
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
                        for p in parts if p.missing_classes]
                     + [f"{p.name}: {len(p.unreadable)} unreadable image(s)"
                        for p in parts if p.unreadable])
    complete = not not_evaluated
    return SuiteResult("imagenet-c", ctx["protocol"], repr(ctx["transform"]), complete, parts,
                       not_evaluated, summary)


def _single_part(suite: str, root: Path, ctx: dict[str, Any], partial: bool) -> SuiteResult:
    wnids = imagenet_r_wnids() if suite == "imagenet-r" else imagenet_wnids()
    found = _scan(root, wnids, partial)
    part = _evaluate_part(suite, found, ctx)
    summary = {"top1_error": part.top1_error, "top1_accuracy": 1.0 - part.top1_error}
    left_out = ([f"class folder {w}" for w in part.missing_classes]
                + [f"unreadable image {f}" for f in part.unreadable])
    return SuiteResult(suite, ctx["protocol"], repr(ctx["transform"]), not left_out, [part],
                       left_out, summary)


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
    on_bad_image: str = "error",
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
        on_bad_image: "error" (stop at an unreadable image, naming it) or "skip" (leave it
            out of the count; the result lists it and is marked incomplete).

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
           "protocol": protocol, "on_bad_image": on_bad_image}
    was_training = model.training
    model.eval()
    try:
        if suite == "imagenet-c":
            return _imagenet_c(Path(data_root), ctx, corruptions, severities, partial, progress)
        return _single_part(suite, Path(data_root), ctx, partial)
    finally:
        model.train(was_training)
