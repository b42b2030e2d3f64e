"""Find the folders of the robustness datasets and their images, or say exactly what is missing.

ImageNet-C: `<root>/<corruption>/<severity>/<wnid>/<image>` or, as some copies have it,
`<root>/<category>/<corruption>/<severity>/<wnid>/<image>` (categories noise, blur, weather,
digital, extra); both are accepted, per corruption. ImageNet-R, ImageNet-Sketch and an
ImageNet validation set: `<root>/<wnid>/<image>`.

A class folder that is not one of the expected wnids is always an error (usually a wrong root).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gpaco.errors import UserError
from gpaco.tasks.classification.robustness.corruptions import CATEGORY

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class ClassImages:
    """The images of one class-folder tree: (path, label) pairs and the wnids without images."""

    samples: list[tuple[str, int]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _subdirs(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_dir())


def _images(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.path for e in it
                      if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))


def scan_class_folders(folder: Path, wnids: Sequence[str], label_of: Mapping[str, int]) -> ClassImages:
    """Images under `folder/<wnid>/` for the expected `wnids`, labelled by `label_of[wnid]`.

    The label comes from the fixed wnid list, not from the folders found, so a missing class
    never shifts the others (as torchvision's ImageFolder would).

    Raises:
        UserError: `folder` is not a directory, or it holds a folder that is not an expected wnid.
    """
    if not folder.is_dir():
        raise UserError(f"{folder} is not a directory")
    expected = set(wnids)
    unknown = [d for d in _subdirs(folder) if d not in expected]
    if unknown:
        raise UserError(f"{folder} holds {len(unknown)} folder(s) that are not classes of this "
                        f"dataset (e.g. {unknown[0]!r}); is it the right root?")
    found = ClassImages()
    for wnid in wnids:
        images = _images(folder / wnid) if (folder / wnid).is_dir() else []
        if not images:
            found.missing.append(wnid)
        found.samples.extend((path, label_of[wnid]) for path in images)
    return found


def imagenet_c_folders(
    root: Path, corruptions: Sequence[str], severities: Sequence[int]
) -> tuple[dict[tuple[str, int], Path], list[str]]:
    """The `<corruption>/<severity>` folders present, and the names of those absent.

    Raises:
        UserError: `root` is not a directory, or a corruption exists in both layouts.
    """
    if not root.is_dir():
        raise UserError(f"ImageNet-C root {root} is not a directory")
    found: dict[tuple[str, int], Path] = {}
    missing: list[str] = []
    for corruption in corruptions:
        candidates = [p for p in (root / corruption, root / CATEGORY[corruption] / corruption)
                      if p.is_dir()]
        if len(candidates) == 2:
            raise UserError(f"{corruption} is both in {candidates[0]} and {candidates[1]}; keep one")
        for severity in severities:
            folder = candidates[0] / str(severity) if candidates else None
            if folder is not None and folder.is_dir():
                found[(corruption, severity)] = folder
            else:
                missing.append(f"{corruption}/{severity}")
    return found, missing
