"""ADE20K (SceneParsing, 150 classes) in its release layout:

    ADEChallengeData2016/images/{training,validation}/ADE_*.jpg
    ADEChallengeData2016/annotations/{training,validation}/ADE_*.png   (0 = other, 1..150)

reduce_zero_label: 0 becomes ignore (255) and class k becomes k - 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from gpaco.data.segmentation.class_names import ADE20K as CLASSES
from gpaco.data.segmentation.layout import find_root
from gpaco.data.segmentation.paired_files import (
    PairedFileDataset,
    check_values,
    reduce_zero_label,
    require_dir,
)


def _decode(mask: np.ndarray, path: str) -> np.ndarray:
    check_values(mask, len(CLASSES) + 1, path, ignore_index=-1)  # raw 0..150
    return reduce_zero_label(mask)


class ADE20K(PairedFileDataset):
    """ADE20K; `root` is ADEChallengeData2016 or a folder containing it."""

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Callable | None = None,
        *,
        annotations: str = "annotations",
    ) -> None:
        base = find_root(root, "images", ("ADEChallengeData2016",), "ADE20K")
        split = "training" if train else "validation"
        image_dir = require_dir(base / "images" / split, "ADE20K images")
        mask_dir = require_dir(base / annotations / split, "ADE20K annotations")
        images = sorted(str(p) for p in image_dir.glob("*.jpg"))
        masks = [str(mask_dir / (Path(p).stem + ".png")) for p in images]
        super().__init__(images, masks, CLASSES, _decode, transform)
        self.root, self.train = base, train
