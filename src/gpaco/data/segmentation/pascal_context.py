"""Pascal-Context-59 on VOC2010, in mmsegmentation's prepared layout:

    VOCdevkit/VOC2010/JPEGImages/<id>.jpg
    VOCdevkit/VOC2010/SegmentationClassContext/<id>.png      (0 = background/other, 1..59)
    VOCdevkit/VOC2010/ImageSets/SegmentationContext/{train,val}.txt   (4,998 / 5,105 ids)

reduce_zero_label: 0 becomes ignore and class k becomes k - 1 (59 classes).

The label PNGs do not ship with VOC2010; `prepare_pascal_context` writes them (and the split
lists) from the Pascal-Context release `trainval.tar.gz` (one `<id>.mat` per image holding
`LabelMap`, the 459-category ids of its labels.txt) and VOC2010's ImageSets/Main lists.
The 59 kept categories are the usual ones (those of the Detail API conversion); every other
category becomes 0.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from gpaco.data.segmentation.class_names import PASCAL_CONTEXT_59 as CLASSES
from gpaco.data.segmentation.layout import find_root
from gpaco.data.segmentation.mat_files import read_mat_array
from gpaco.data.segmentation.paired_files import (
    PairedFileDataset,
    check_values,
    reduce_zero_label,
    require_dir,
    stems,
)
from gpaco.errors import UserError

# 459-category ids (labels.txt) of the 59 classes, in class order (ascending id = CLASSES order).
CONTEXT_IDS = (2, 9, 18, 19, 22, 23, 25, 31, 33, 34, 44, 45, 46, 59, 65, 68, 72, 80, 85, 98,
               104, 105, 113, 115, 144, 158, 159, 162, 187, 189, 207, 220, 232, 258, 259, 260,
               284, 295, 296, 308, 324, 326, 347, 349, 354, 355, 360, 366, 368, 397, 415, 416,
               420, 424, 427, 440, 445, 454, 458)
MASK_DIR = "SegmentationClassContext"
SPLIT_DIR = "ImageSets/SegmentationContext"


def _decode(mask: np.ndarray, path: str) -> np.ndarray:
    check_values(mask, len(CLASSES) + 1, path, ignore_index=-1)  # raw 0..59
    return reduce_zero_label(mask)


class PascalContext59(PairedFileDataset):
    """Pascal-Context-59; `root` is VOC2010, VOCdevkit or the folder holding VOCdevkit."""

    def __init__(
        self, root: str | Path, train: bool = True, transform: Callable | None = None
    ) -> None:
        base = find_root(root, "JPEGImages", ("VOC2010", "VOCdevkit/VOC2010"), "VOC2010")
        names = stems(base / SPLIT_DIR / ("train.txt" if train else "val.txt"),
                      "Pascal-Context (run prepare_pascal_context first)")
        mask_dir = require_dir(base / MASK_DIR, "Pascal-Context labels (run prepare_pascal_context)")
        images = [str(base / "JPEGImages" / f"{n}.jpg") for n in names]
        masks = [str(mask_dir / f"{n}.png") for n in names]
        super().__init__(images, masks, CLASSES, _decode, transform)
        self.root, self.train = base, train


def context_to_59(label_map: np.ndarray) -> np.ndarray:
    """459-category LabelMap -> uint8 0..59 (0 = background and every other category)."""
    lut = np.zeros(max(int(label_map.max()), CONTEXT_IDS[-1]) + 1, dtype=np.uint8)
    lut[list(CONTEXT_IDS)] = np.arange(1, len(CONTEXT_IDS) + 1, dtype=np.uint8)
    if label_map.min() < 0:
        raise ValueError("negative category id")
    return lut[label_map.astype(np.int64)]


def _read_label_map(path: Path) -> np.ndarray:
    return read_mat_array(path, "LabelMap", "Pascal-Context trainval")


def prepare_pascal_context(voc2010: str | Path, context_mats: str | Path) -> dict[str, int]:
    """Write SegmentationClassContext/<id>.png and ImageSets/SegmentationContext/{train,val}.txt
    into the VOC2010 folder `voc2010` from the `trainval/` folder of .mat files.

    The splits are VOC2010's ImageSets/Main train/val lists restricted to images with a
    .mat. Returns the number of ids written per split. Idempotent (files are overwritten).
    """
    base = find_root(voc2010, "JPEGImages", ("VOC2010", "VOCdevkit/VOC2010"), "VOC2010")
    mats = require_dir(Path(context_mats), "Pascal-Context trainval .mat folder")
    available = {p.stem for p in mats.glob("*.mat")}
    if not available:
        raise UserError(f"no .mat files in {mats}")
    out_dir = base / MASK_DIR
    out_dir.mkdir(exist_ok=True)
    (base / SPLIT_DIR).mkdir(parents=True, exist_ok=True)
    written = {}
    for split in ("train", "val"):
        ids = [n for n in stems(base / "ImageSets" / "Main" / f"{split}.txt", "VOC2010")
               if n in available]
        for name in ids:
            image = base / "JPEGImages" / f"{name}.jpg"
            if not image.is_file():
                raise UserError(f"missing file {image}")
            label = context_to_59(_read_label_map(mats / f"{name}.mat"))
            with Image.open(image) as img:
                if label.shape != (img.height, img.width):
                    raise UserError(f"{mats / (name + '.mat')} is {label.shape[1]}x{label.shape[0]}"
                                    f" but {image} is {img.width}x{img.height}")
            Image.fromarray(label, mode="L").save(out_dir / f"{name}.png")
        (base / SPLIT_DIR / f"{split}.txt").write_text("".join(f"{n}\n" for n in ids))
        written[split] = len(ids)
    return written
