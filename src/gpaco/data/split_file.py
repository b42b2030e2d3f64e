"""Datasets defined by a split file: one `relative/path label` per line (OLTR / decoupling format).

This is how ImageNet-LT, Places-LT and iNaturalist 2018 are distributed. The lists of the
training splits are not shipped with gpaco: bring your own (e.g. ImageNet_LT_train.txt).
"""
from __future__ import annotations

from typing import Literal

import functools
import os
from collections.abc import Callable
from pathlib import Path

from gpaco.data.image_files import FileDataset
from gpaco.errors import UserError

MAX_REPORTED = 5


def parse_split_file(
    split_file: Path, root: Path, num_classes: int | None, check_files: bool
) -> tuple[list[str], list[int]]:
    """Paths (joined to root) and labels; raises one UserError listing every bad line."""
    try:
        lines = split_file.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read split file {split_file}: {type(e).__name__}: {e}") from None
    paths: list[str] = []
    labels: list[int] = []
    bad: list[str] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        problem, path, label = _parse_line(line, root, num_classes, check_files)
        if problem:
            bad.append(f"line {lineno}: {line.strip()!r} ({problem})")
        else:
            paths.append(path)
            labels.append(label)
    if bad:
        raise UserError(f"split file {split_file}: {len(bad)} bad line(s) (root {root}); first "
                        f"{min(len(bad), MAX_REPORTED)}: " + "; ".join(bad[:MAX_REPORTED]))
    if not paths:
        raise UserError(f"split file {split_file} lists no images")
    return paths, labels


def _parse_line(line: str, root: Path, num_classes: int | None, check_files: bool
                ) -> tuple[str | None, str, int]:
    """(problem or None, path, label) of one non-blank line."""
    parts = line.strip().rsplit(maxsplit=1)  # rsplit: paths may contain spaces
    if len(parts) != 2:
        return "expected 'relative/path label'", "", -1
    rel, label_text = parts
    try:
        label = int(label_text)
    except ValueError:
        return f"label {label_text!r} is not an integer", "", -1
    if label < 0 or (num_classes is not None and label >= num_classes):
        upper = f"{num_classes - 1}" if num_classes is not None else "..."
        return f"label {label} out of range 0..{upper}", "", -1
    path = os.path.join(root, rel)
    if check_files and not os.path.isfile(path):
        return f"missing file {path}", "", -1
    return None, path, label


def class_names_from_paths(paths: list[str], labels: list[int], num_classes: int) -> list[str]:
    """Name of class c = parent folder of its first image (ImageNet wnid, Places category,
    iNat id); str(c) for classes absent from the list."""
    names = [str(c) for c in range(num_classes)]
    seen: set[int] = set()
    for path, label in zip(paths, labels):
        if label not in seen:
            seen.add(label)
            names[label] = os.path.basename(os.path.dirname(path)) or str(label)
    return names


class SplitFileDataset(FileDataset):
    """Images listed as `relative/path label`, paths relative to `root`.

    The split's list is `train_split` (train=True) or `test_split`; the other may be None.
    Blank lines are ignored. The whole list is checked up front (malformed lines, labels outside
    0..num_classes-1 when num_classes is given, missing files when check_files): one UserError
    gives the count and the first 5 bad lines. num_classes defaults to max label + 1.
    `data` is the list of absolute paths; `class_counts` counts the list.
    """

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Callable | None = None,
        *,
        train_split: str | Path | None = None,
        test_split: str | Path | None = None,
        num_classes: int | None = None,
        check_files: bool = True,
        on_bad_image: Literal["error", "skip"] = "error",
    ) -> None:
        split, key = (train_split, "train_split") if train else (test_split, "test_split")
        if split is None:
            raise UserError(f"data.{key} is needed: the path of the 'relative/path label' list of the "
                            f"{'training' if train else 'test'} split")
        self.root = Path(root).expanduser()
        self.train = train
        self.split_file = Path(split).expanduser()
        if not self.split_file.is_file():
            raise UserError(f"split file {self.split_file} not found")
        if check_files and not self.root.is_dir():
            raise UserError(f"image root {self.root} is not a directory (split file {self.split_file})")
        paths, labels = parse_split_file(self.split_file, self.root, num_classes, check_files)
        n = num_classes if num_classes is not None else max(labels) + 1
        super().__init__(paths, labels, class_names_from_paths(paths, labels, n), transform,
                         on_bad_image)


# The class count of each standard long-tailed split-file benchmark.
NUM_CLASSES = {"imagenet_lt": 1000, "places_lt": 365, "inat2018": 8142}
# ImageNet-LT: root holds train/ and val/ of ILSVRC-2012.
ImageNetLT = functools.partial(SplitFileDataset, num_classes=NUM_CLASSES["imagenet_lt"])
# Places-LT: root holds data_256/ of Places365-Standard.
PlacesLT = functools.partial(SplitFileDataset, num_classes=NUM_CLASSES["places_lt"])
# iNaturalist 2018: root holds train_val2018/.
INat2018 = functools.partial(SplitFileDataset, num_classes=NUM_CLASSES["inat2018"])
