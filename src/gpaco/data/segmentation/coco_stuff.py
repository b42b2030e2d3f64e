"""COCO-Stuff-10k (v1.1 release, 171 classes) in its release layout:

    cocostuff-10k-v1.1/images/<name>.jpg
    cocostuff-10k-v1.1/annotations/<name>.mat     (key "S": ids 0 = unlabelled, 1..182)
    cocostuff-10k-v1.1/imageLists/{train,test}.txt (9,000 / 1,000 names)

The 182 COCO ids include 11 that no image uses (thing ids dropped from COCO); the other 171
become train ids 0..170 in id order, 0 becomes ignore. Reading .mat files needs scipy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from gpaco.data.segmentation.class_names import COCO_STUFF as CLASSES
from gpaco.data.segmentation.layout import find_root
from gpaco.data.segmentation.mat_files import read_mat_array
from gpaco.data.segmentation.paired_files import (
    IGNORE_INDEX,
    PairedFileDataset,
    lookup,
    require_dir,
    stems,
)

UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91)
_USED = [i for i in range(1, 183) if i not in UNUSED_IDS]
ID_TO_TRAIN_ID = {0: IGNORE_INDEX, **{coco_id: k for k, coco_id in enumerate(_USED)}}


def read_mat_mask(path: str) -> np.ndarray:
    """The "S" label map of a COCO-Stuff-10k .mat file."""
    return read_mat_array(path, "S", "COCO-Stuff-10k annotation")


def coco_ids_to_train_ids(mask: np.ndarray, path: str = "<array>") -> np.ndarray:
    return lookup(ID_TO_TRAIN_ID, mask, path, "COCO-Stuff")


class COCOStuff10k(PairedFileDataset):
    """COCO-Stuff-10k; `root` is cocostuff-10k-v1.1 or a folder containing it
    (train=False: the 1,000-image test list)."""

    eval_split = "test"

    def __init__(
        self, root: str | Path, train: bool = True, transform: Callable | None = None
    ) -> None:
        base = find_root(root, "imageLists", ("cocostuff-10k-v1.1", "cocostuff-10k"),
                         "COCO-Stuff-10k")
        names = stems(base / "imageLists" / ("train.txt" if train else "test.txt"),
                      "COCO-Stuff-10k")
        image_dir = require_dir(base / "images", "COCO-Stuff-10k images")
        mask_dir = require_dir(base / "annotations", "COCO-Stuff-10k annotations")
        images = [str(image_dir / f"{n}.jpg") for n in names]
        masks = [str(mask_dir / f"{n}.mat") for n in names]
        super().__init__(images, masks, CLASSES, coco_ids_to_train_ids, transform,
                         read_mask=read_mat_mask)
        self.root, self.train = base, train
