"""Cityscapes (fine annotations, 19 train classes) in its release layout:

    leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png
    gtFine/{train,val}/<city>/<name>_gtFine_labelIds.png      (label ids 0..33)

The label ids are mapped to the 19 train ids here (the cityscapesScripts table); ids without
a train id (void, and classes excluded from evaluation) become ignore (255).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from gpaco.data.segmentation.class_names import CITYSCAPES as CLASSES
from gpaco.data.segmentation.layout import find_root
from gpaco.data.segmentation.paired_files import (
    IGNORE_INDEX,
    PairedFileDataset,
    lookup,
    require_dir,
)

# label id -> train id, for the 19 evaluated classes (cityscapesScripts helpers/labels.py).
_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
              24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
LABEL_TO_TRAIN_ID = {i: _TRAIN_IDS.get(i, IGNORE_INDEX) for i in range(34)}

IMAGE_SUFFIX = "_leftImg8bit.png"
MASK_SUFFIX = "_gtFine_labelIds.png"


def label_ids_to_train_ids(mask: np.ndarray, path: str = "<array>") -> np.ndarray:
    """Map a *_labelIds.png array to train ids; ids above 33 are a UserError naming `path`."""
    return lookup(LABEL_TO_TRAIN_ID, mask, path, "Cityscapes label")


class Cityscapes(PairedFileDataset):
    """Cityscapes fine; `root` holds leftImg8bit/ and gtFine/ (train=False: the val split)."""

    def __init__(
        self, root: str | Path, train: bool = True, transform: Callable | None = None
    ) -> None:
        base = find_root(root, "leftImg8bit", ("cityscapes",), "Cityscapes")
        split = "train" if train else "val"
        image_dir = require_dir(base / "leftImg8bit" / split, "Cityscapes images")
        mask_dir = require_dir(base / "gtFine" / split, "Cityscapes gtFine")
        images = sorted(str(p) for p in image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        masks = []
        for path in images:
            rel = Path(path).relative_to(image_dir)
            name = rel.name.removesuffix(IMAGE_SUFFIX) + MASK_SUFFIX
            masks.append(str(mask_dir / rel.parent / name))
        super().__init__(images, masks, CLASSES, label_ids_to_train_ids, transform)
        self.root, self.train = base, train
