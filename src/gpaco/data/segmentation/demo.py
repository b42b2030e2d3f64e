"""An embedded long-tailed segmentation set built from the embedded Fashion-MNIST-LT items.

Each image is a `size` x `size` RGB canvas (dark noisy background) cut into a `grid` x `grid`
layout; each cell holds, with probability `fill` (at least one per canvas), one Fashion-MNIST
item at a random scale (9/16 to 15/16 of the cell) and position inside the cell, in a random
colour (so colour says nothing about the class). Items do not overlap. Labels: 0 = background, 1..10 = the
item's Fashion-MNIST class; an item's faint pixels (0 < intensity <= `rim`: rims and dark
folds) are ignore (255).
Training canvases draw their items from the long-tailed training split (1000 ... 10 items per
class, so class frequency is long-tailed in pixels too); test canvases draw from the
balanced test split. Everything is a deterministic function of `seed`; no file is read but
the package asset.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from gpaco.data.embedded import load_embedded
from gpaco.errors import UserError

IGNORE_INDEX = 255


def _resize_nearest(item: np.ndarray, side: int) -> np.ndarray:
    index = (np.arange(side) * item.shape[0]) // side
    return item[index][:, index]


def _canvas(
    rng: np.random.Generator, items: np.ndarray, labels: np.ndarray, size: int, grid: int,
    fill: float, rim: int,
) -> tuple[np.ndarray, np.ndarray]:
    image = rng.integers(0, 48, (size, size, 1)) + rng.integers(0, 24, (size, size, 3))
    mask = np.zeros((size, size), dtype=np.uint8)
    cell = size // grid
    occupied = rng.random(grid * grid) < fill
    occupied[rng.integers(grid * grid)] = True  # at least one item per canvas
    for slot in np.flatnonzero(occupied):
        k = int(rng.integers(len(items)))
        side = int(rng.integers(cell * 9 // 16, cell * 15 // 16 + 1))
        glyph = _resize_nearest(items[k], side).astype(np.float64)
        top = (slot // grid) * cell + int(rng.integers(0, cell - side + 1))
        left = (slot % grid) * cell + int(rng.integers(0, cell - side + 1))
        colour = rng.uniform(0.35, 1.0, 3)
        region = (slice(top, top + side), slice(left, left + side))
        on = glyph > 0
        alpha = (glyph / 255.0)[..., None]
        painted = alpha * colour * 255 + (1 - alpha) * image[region]
        image[region] = np.where(on[..., None], painted, image[region])
        mask[region] = np.where(glyph > rim, labels[k] + 1,
                                np.where(on, IGNORE_INDEX, mask[region]))
    return np.clip(image, 0, 255).astype(np.uint8), mask


class EmbeddedSegmentationLT(Dataset):
    """The embedded segmentation demo; `__getitem__` -> transform(Image uint8, Mask int64).

    Attributes: `data` (N, size, size, 3) uint8, `masks` (N, size, size) uint8, `classes`
    ("background" + the 10 Fashion-MNIST classes), `num_classes` (11), `ignore_index` (255).
    """

    ignore_index = IGNORE_INDEX
    eval_split = "test"  # drawn from Fashion-MNIST's test items; no model is chosen on it

    def __init__(
        self,
        root: str | Path | None = None,  # ignored: the set is built from the package asset
        train: bool = True,
        transform: Callable | None = None,
        *,
        num_images: int | None = None,
        size: int = 64,
        grid: int = 2,
        fill: float = 0.75,
        rim: int = 48,
        seed: int = 0,
    ) -> None:
        if grid < 1 or size // grid < 16 or not 0.0 <= fill <= 1.0:
            raise UserError(f"demo canvas needs cells of >= 16 px and fill in [0, 1], got "
                            f"size {size}, grid {grid}, fill {fill}")
        arrays = load_embedded()
        split = "train" if train else "test"
        num_images = num_images if num_images is not None else (512 if train else 128)
        # Distinct streams for train and test, both fixed by `seed`.
        rng = np.random.default_rng([seed, int(train)])
        pairs = [_canvas(rng, arrays[f"{split}_x"], arrays[f"{split}_y"], size, grid, fill, rim)
                 for _ in range(num_images)]
        self.data = np.stack([p[0] for p in pairs])
        self.masks = np.stack([p[1] for p in pairs])
        self.classes = ["background", *(str(c) for c in arrays["classes"])]
        self.num_classes = len(self.classes)
        self.transform = transform
        self.train = train

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        image = tv_tensors.Image(torch.from_numpy(self.data[index]).permute(2, 0, 1))
        mask = tv_tensors.Mask(torch.from_numpy(self.masks[index].astype(np.int64)))
        if self.transform is None:
            return image, mask
        return self.transform(image, mask)

    def pixel_counts(self) -> list[int]:
        """Labelled pixels per class over the split."""
        valid = self.masks[self.masks != self.ignore_index]
        return np.bincount(valid, minlength=self.num_classes).tolist()
