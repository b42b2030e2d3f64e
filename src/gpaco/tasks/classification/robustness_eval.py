"""`gpaco eval --suite`: a checkpoint (gpaco's, an authors' file, or an ensemble) on the
robustness benchmarks of gpaco.tasks.classification.robustness, with results beside the checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gpaco.errors import UserError
from gpaco.tasks.classification.robustness import CORRUPTIONS, SuiteResult, evaluate_suite, write_results
from gpaco.tasks.classification.robustness.result import check_results_folder

from gpaco.tasks.classification.build import resolve_device
from gpaco.config import Config
from gpaco.tasks.classification.evaluate_files import load_files

SUITE_CHOICES = ("imagenet-c", "imagenet-r", "imagenet-sketch", "imagenet-val", "all")
# `--suite all` reads these sub-folders of --data-root (the first that exists).
ALL_FOLDERS = {"imagenet-c": ("imagenet-c",), "imagenet-r": ("imagenet-r",),
               "imagenet-sketch": ("imagenet-sketch", "sketch")}


@dataclass
class SuiteRun:
    """What `--suite` decides: the data, the protocol and where the results go."""

    suite: str
    data_root: Path
    protocol: str = "authors"
    partial: bool = False
    corruptions: Sequence[str] = CORRUPTIONS
    interpolation: str | None = None  # None: bicubic for ViTs, bilinear otherwise (the papers')
    batch_size: int = 100
    workers: int = 0
    device: str = "auto"
    out: Path | None = None  # default: <first checkpoint's folder>/robustness
    on_bad_image: str = "error"  # "skip": leave unreadable images out, listed in the result
    overwrite: bool = False  # replace results an earlier evaluation wrote


def _suites(run: SuiteRun) -> list[tuple[str, Path]]:
    if run.suite not in SUITE_CHOICES:
        raise UserError(f"--suite must be one of {', '.join(SUITE_CHOICES)}, not {run.suite!r}")
    if run.suite != "all":
        return [(run.suite, run.data_root)]
    found = []
    for suite, names in ALL_FOLDERS.items():
        folder = next((run.data_root / n for n in names if (run.data_root / n).is_dir()), None)
        if folder is None:
            raise UserError(f"--suite all reads {run.data_root}/{{{','.join(names)}}} for "
                            f"{suite}; none exists")
        found.append((suite, folder))
    return found


def _interpolation(model: object, given: str | None) -> str:
    if given is not None:
        return given
    is_vit = any(hasattr(m, "patch_embed") for m in model.modules())
    return "bicubic" if is_vit else "bilinear"


def evaluate_robustness(paths: Sequence[str], run: SuiteRun, overrides: Sequence[str] = (),
                        recipe: Config | None = None) -> list[tuple[SuiteResult, Path, Path]]:
    """Evaluate the file(s) on each suite of `run`; returns (result, json, markdown) per suite."""
    suites = _suites(run)  # the data layout is checked before the model is loaded
    loaded = load_files(paths, overrides, recipe)
    if loaded.num_classes != 1000:
        raise UserError(f"{loaded.source} has {loaded.num_classes} classes; the robustness "
                        "suites need a 1000-class ImageNet model")
    device = resolve_device(run.device)
    model = loaded.model.to(device)
    out = run.out or Path(paths[0]).resolve().parent / "robustness"
    check_results_folder(out, [suite for suite, _ in suites], run.overwrite)  # before hours of work
    d = loaded.config.data  # the model's input: its side (224 -> Resize 256) and normalisation
    size = {"image_size": d.image_size, "resize_size": round(d.image_size / 0.875),
            **({"mean": d.mean} if d.mean else {}), **({"std": d.std} if d.std else {})}
    done = []
    for suite, root in suites:
        result = evaluate_suite(model, suite, root, protocol=run.protocol, partial=run.partial,
                                corruptions=run.corruptions, batch_size=run.batch_size,
                                num_workers=run.workers, device=device,
                                interpolation=_interpolation(model, run.interpolation),
                                on_bad_image=run.on_bad_image, **size)
        done.append((result, *write_results(result, out)))
    return done
