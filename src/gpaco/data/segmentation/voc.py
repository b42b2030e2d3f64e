"""PASCAL VOC 2012 segmentation (21 classes incl. background) in its release layout:

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<id>.png    (palette indices 0..20, 255 = boundary)
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val}.txt
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from gpaco.data.segmentation.class_names import PASCAL_VOC as CLASSES
from gpaco.data.segmentation.layout import find_root
from gpaco.data.segmentation.paired_files import PairedFileDataset, require_dir, stems


def _decode(mask: np.ndarray, path: str) -> np.ndarray:
    return mask  # palette indices are the train ids; PairedFileDataset checks the range


class PascalVOC(PairedFileDataset):
    """VOC2012 segmentation; `root` is VOC2012, VOCdevkit or the folder holding VOCdevkit."""

    def __init__(
        self, root: str | Path, train: bool = True, transform: Callable | None = None
    ) -> None:
        base = find_root(root, "JPEGImages", ("VOC2012", "VOCdevkit/VOC2012"), "VOC2012")
        names = stems(base / "ImageSets" / "Segmentation" / ("train.txt" if train else "val.txt"),
                      "VOC2012")
        mask_dir = require_dir(base / "SegmentationClass", "VOC2012 SegmentationClass")
        images = [str(base / "JPEGImages" / f"{n}.jpg") for n in names]
        masks = [str(mask_dir / f"{n}.png") for n in names]
        super().__init__(images, masks, CLASSES, _decode, transform)
        self.root, self.train = base, train
