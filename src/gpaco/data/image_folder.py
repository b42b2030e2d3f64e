"""An ImageFolder (one sub-folder per class) with optional long-tail subsampling."""
from __future__ import annotations

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


class LongTailImageFolder(FileDataset):
    """root/<split folder>/<class>/<image> (torchvision ImageFolder inside each split folder).

    The training split is `root/train_dir`, the test split `root/test_dir`. With imb_factor,
    the training split is the Cao et al. long-tail subset: class c (in sorted folder order)
    keeps int(n_max * imb_factor ** (c / (C - 1))) images, n_max being the largest class (fewer
    if the folder has fewer), chosen by the generator of longtail.py seeded with subset_seed.
    imb_factor=None keeps every image; the test split is never subsampled.
    """

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Callable | None = None,
        *,
        imb_factor: float | None = None,
        imb_type: str = "exp",
        subset_seed: int = 0,
        on_bad_image: str = "error",
        train_dir: str = "train",
        test_dir: str = "val",
    ) -> None:
        self.root = Path(root).expanduser()
        self.train = train
        self.folder = self.root / (train_dir if train else test_dir)
        classes, paths, labels = scan_folder(self.folder)
        if imb_factor is not None and train:
            check_imbalance(imb_factor, imb_type)
            counts = longtail_counts(max(np.bincount(labels)), len(classes), imb_factor, imb_type)
            keep = longtail_indices(labels, counts, subset_seed)
            paths = [paths[i] for i in keep]
            labels = [labels[i] for i in keep]
        self.imb_factor, self.imb_type, self.subset_seed = imb_factor, imb_type, subset_seed
        super().__init__(paths, labels, classes, transform, on_bad_image)
