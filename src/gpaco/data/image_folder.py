"""An ImageFolder (one sub-folder per class) with optional long-tail subsampling."""
from __future__ import annotations

from typing import Literal

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gpaco.data.image_files import FileDataset
from gpaco.data.longtail import check_imbalance, longtail_counts, longtail_indices
from gpaco.errors import UserError

# torchvision.datasets.folder.IMG_EXTENSIONS
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def scan_folder(root: Path) -> tuple[list[str], list[str], list[int]]:
    """(class names, image paths, labels) like torchvision's ImageFolder: classes are the
    sorted sub-folder names, images are found recursively in sorted order."""
    if not root.is_dir():
        raise UserError(f"image folder {root} is not a directory")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise UserError(f"image folder {root} has no class sub-folders (expected root/<class>/<image>)")
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = _images_under(root / name)
        if not found:
            raise UserError(f"class folder {root / name} holds no images "
                            f"(extensions {', '.join(IMG_EXTENSIONS)})")
        paths += found
        labels += [label] * len(found)
    return classes, paths, labels


def _images_under(folder: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in sorted(os.walk(folder, followlinks=True)):
        dirnames.sort()
        found += [os.path.join(dirpath, f) for f in sorted(filenames)
                  if f.lower().endswith(IMG_EXTENSIONS)]
    return found


def implied_splits(root: str | Path | None, val_split: str | None,
                   test_split: str | None) -> tuple[str | None, str]:
    """The (validation, test) folders of a root, as split files give them.

    With `train/ val/ test/`, val/ selects (the best epoch) and test/ reports; with only
    `train/ val/` (ImageNet's layout), val/ is the test split and there is no validation
    split. Folders given (data.val_split, data.test_split) win; val and test never coincide.
    """
    base = Path(root).expanduser() if root is not None else Path(".")
    has_test = (base / "test").is_dir()
    if test_split is None:
        test_split = "test" if has_test else "val"
    if val_split is None and has_test and test_split == "test" and (base / "val").is_dir():
        val_split = "val"
    if val_split is not None and Path(val_split) == Path(test_split):
        raise UserError(f"data.val_split and data.test_split both name {base / test_split}: "
                        "selecting on it would select on the test set; give a separate "
                        "validation folder (root/val/ beside root/test/)")
    return val_split, test_split


class LongTailImageFolder(FileDataset):
    """root/<split folder>/<class>/<image> (torchvision ImageFolder inside each split folder).

    The training split is `root/train_split`, the test split `root/test_split` (default test/
    where it exists, else val/; `implied_splits` says which folder plays which part). With
    imb_factor,
    the training split is the Cao et al. long-tail subset: class c (in sorted folder order)
    keeps int(n_max * imb_factor ** (c / (C - 1))) images, n_max being the largest class (fewer
    if the folder has fewer), chosen by the generator of longtail.py seeded with subset_seed.
    imb_factor=None keeps every image; the test split is never subsampled.
    """

    # The registry asks a dataset which folders play validation and test (registry.implied_splits).
    implied_splits = staticmethod(implied_splits)
    # Its split options name folders under the data root (not list files), and its classes are
    # those folders' names: train and test must hold the same ones.
    splits_are_folders = True

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Callable | None = None,
        *,
        imb_factor: float | None = None,
        imb_type: Literal["exp", "step"] = "exp",
        subset_seed: int = 0,
        on_bad_image: Literal["error", "skip"] = "error",
        train_split: str = "train",
        test_split: str | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.train = train
        self.folder = self.root / (train_split if train else implied_splits(root, None,
                                                                            test_split)[1])
        classes, paths, labels = scan_folder(self.folder)
        if imb_factor is not None and train:
            check_imbalance(imb_factor, imb_type)
            counts = longtail_counts(max(np.bincount(labels)), len(classes), imb_factor, imb_type)
            keep = longtail_indices(labels, counts, subset_seed)
            paths = [paths[i] for i in keep]
            labels = [labels[i] for i in keep]
        self.imb_factor, self.imb_type, self.subset_seed = imb_factor, imb_type, subset_seed
        super().__init__(paths, labels, classes, transform, on_bad_image)
