"""The embedded default dataset: a small long-tailed Fashion-MNIST shipped inside the package.

Built by scripts/build_embedded.py (Cao et al. exp profile, n_max=1000, imb_factor=0.01,
seed 0: 2,478 training images from 1,000 down to 10 per class; 2,000 test images, 200 per
class; a balanced validation split of 1,000 training images the subset left out, 100 per class). Licence: MIT (Zalando SE 2017), see gpaco/assets/LICENSE-fashion-mnist.md.
Needs no download, so examples and the CPU smoke run work offline.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from gpaco.data.in_memory import ArrayDataset, grey_to_rgb
from gpaco.errors import UserError

ASSET = "fmnist_lt.npz"


def load_embedded() -> dict[str, Any]:
    """The arrays of assets/fmnist_lt.npz (grey images), plus its build parameters as `meta`."""
    ref = resources.files("gpaco") / "assets" / ASSET
    try:
        with resources.as_file(ref) as path, np.load(Path(path), allow_pickle=False) as npz:
            arrays: dict[str, Any] = {k: npz[k] for k in npz.files}
    except (FileNotFoundError, OSError, ValueError) as e:
        raise UserError(f"the embedded dataset gpaco/assets/{ASSET} is missing or damaged "
                        f"({type(e).__name__}); reinstall gpaco or run scripts/build_embedded.py") from None
    arrays["meta"] = json.loads(str(arrays["meta"][()]))
    return arrays


SPLITS = ("test", "val")


class EmbeddedFashionMNISTLT(ArrayDataset):
    """The embedded long-tailed Fashion-MNIST; `data` is RGB (N, 28, 28, 3) uint8.

    No download: the data lives in the package (`root` is accepted for the torchvision
    signature and ignored). `test_split` ("test", the default, or "val") is the held-out split
    read when `train` is False.
    """

    splits_are_folders = True  # split options are names ("val"), never made absolute paths

    def __init__(self, root: str | Path | None = None, train: bool = True,
                 transform: Callable | None = None, *, test_split: str | None = None) -> None:
        test_split = test_split or "test"
        if test_split not in SPLITS:
            raise UserError(f"the embedded dataset's held-out splits are {' and '.join(SPLITS)}, "
                            f"not {test_split!r}")
        arrays = load_embedded()
        split = "train" if train else test_split
        if f"{split}_x" not in arrays:
            raise UserError(f"gpaco/assets/{ASSET} has no {split} split (an older file); "
                            "reinstall gpaco or run scripts/build_embedded.py")
        self.train = train
        self.meta: dict[str, Any] = arrays["meta"]
        super().__init__(grey_to_rgb(arrays[f"{split}_x"]), arrays[f"{split}_y"].tolist(),
                         [str(c) for c in arrays["classes"]], transform)

    @staticmethod
    def implied_splits(root: str | Path | None, val_split: str | None,
                       test_split: str | None) -> tuple[str | None, str]:
        """Every run on the embedded data validates on its val split and tests on test (as an
        image folder with val/ and test/ does), unless data.val_split / data.test_split say
        otherwise; `root` is ignored."""
        test = test_split or "test"
        if val_split is None and test != "val":
            val_split = "val"
        return val_split, test

