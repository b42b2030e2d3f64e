"""Image + label-map pairs read from disk, with the checks every benchmark loader shares.

`__getitem__` returns `transform(tv_tensors.Image uint8 (3, H, W), tv_tensors.Mask int64 (H, W))`
(both untransformed without a transform). Masks are decoded by the dataset's `decode`
(raw file values -> train ids in [0, C) or `ignore_index`); every problem a user can fix is a
one-line UserError naming the file: a missing file, an undecodable one, a mask whose size
differs from its image, a value outside the classes that is not the ignore value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors

from gpaco.data.image_files import load_rgb
from gpaco.errors import UserError

IGNORE_INDEX = 255
MaskDecoder = Callable[[np.ndarray, str], np.ndarray]


def require_dir(path: Path, what: str) -> Path:
    """`path` if it is a directory, else a UserError saying which layout part is missing."""
    if not path.is_dir():
        raise UserError(f"{what}: expected the folder {path}, which does not exist")
    return path


def read_png_mask(path: str) -> np.ndarray:
    """A single-channel label PNG (L, P palette indices, I;16 or I) as an (H, W) integer array."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P", "I;16", "I"):
                raise UserError(f"mask {path} has mode {img.mode}; expected a single-channel "
                                f"label image (L, P, I;16)")
            return np.array(img)
    except (OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read mask {path}: {type(e).__name__}: {e}") from None


def check_values(mask: np.ndarray, num_classes: int, path: str, ignore_index: int) -> np.ndarray:
    """`mask` unchanged if every value is a class id or `ignore_index`, else a UserError."""
    bad = ((mask >= num_classes) & (mask != ignore_index)) | (mask < 0)
    if bad.any():
        values = sorted({int(v) for v in np.unique(mask[bad])[:5]})
        raise UserError(f"mask {path} has values {values} outside 0..{num_classes - 1} "
                        f"(ignore {ignore_index})")
    return mask


def reduce_zero_label(mask: np.ndarray) -> np.ndarray:
    """0 (unlabelled) -> 255 and v -> v - 1 (ADE20K, Pascal-Context-59)."""
    out = mask.astype(np.int64) - 1
    out[mask == 0] = IGNORE_INDEX
    return out


def lookup(table: dict[int, int], mask: np.ndarray, path: str, what: str) -> np.ndarray:
    """Map raw ids through `table`; an id not in it is a UserError naming the file."""
    raw = mask.astype(np.int64)
    values = np.unique(raw)
    unknown = [int(v) for v in values if int(v) not in table]
    if unknown:
        raise UserError(f"mask {path} has {what} ids {unknown[:5]} that are not defined")
    lut = np.full(int(values.max()) + 1, IGNORE_INDEX, dtype=np.int64)
    for v in values:
        lut[v] = table[int(v)]
    return lut[raw]


class PairedFileDataset(Dataset):
    """Pairs of (image path, mask path) with a mask decoder and the shared checks."""

    ignore_index = IGNORE_INDEX
    # The labelled split `train=False` loads, named as the benchmark's papers name it (what a
    # run's records and lines call the evaluation); COCO-Stuff-10k's is its test list.
    eval_split = "val"

    def __init__(
        self,
        images: Sequence[str],
        masks: Sequence[str],
        classes: Sequence[str],
        decode: MaskDecoder,
        transform: Callable | None = None,
        read_mask: Callable[[str], np.ndarray] = read_png_mask,
    ) -> None:
        if len(images) != len(masks):
            raise ValueError("images and masks must pair up")
        for path in (*images, *masks):
            if not Path(path).is_file():
                raise UserError(f"missing file {path}")
        self.images = list(images)
        self.masks = list(masks)
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self.decode = decode
        self.read_mask = read_mask
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def load_mask(self, index: int) -> np.ndarray:
        """The decoded (H, W) int64 train-id mask of item `index`, checked."""
        path = self.masks[index]
        mask = self.decode(self.read_mask(path), path)
        return check_values(mask.astype(np.int64), self.num_classes, path, self.ignore_index)

    def load_pair(self, index: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        image = load_rgb(self.images[index])
        mask = self.load_mask(index)
        if mask.shape != (image.height, image.width):
            raise UserError(f"mask {self.masks[index]} is {mask.shape[1]}x{mask.shape[0]} but "
                            f"its image {self.images[index]} is {image.width}x{image.height}")
        pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
        return tv_tensors.Image(pixels), tv_tensors.Mask(torch.from_numpy(mask))

    def __getitem__(self, index: int):
        image, mask = self.load_pair(index)
        if self.transform is None:
            return image, mask
        return self.transform(image, mask)

    def pixel_counts(self) -> list[int]:
        """Labelled pixels per class over the split (reads every mask once)."""
        counts = np.zeros(self.num_classes, dtype=np.int64)
        for i in range(len(self)):
            mask = self.load_mask(i)
            counts += np.bincount(mask[mask != self.ignore_index], minlength=self.num_classes)
        return counts.tolist()


def stems(list_file: Path, what: str) -> list[str]:
    """The non-empty lines of an image-list file (one id per line), or a UserError."""
    if not list_file.is_file():
        raise UserError(f"{what}: expected the list file {list_file}, which does not exist")
    names = [line.strip().split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    if not names:
        raise UserError(f"{what}: the list file {list_file} is empty")
    return names
