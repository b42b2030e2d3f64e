"""Shared machinery of the in-memory datasets (CIFAR, Fashion-MNIST, embedded)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from gpaco.data.longtail import class_counts, longtail_counts, longtail_indices


class ArrayDataset(Dataset):
    """Images held as a uint8 (N, H, W, 3) array; `__getitem__` gives (transform(PIL RGB), target)."""

    def __init__(
        self,
        data: np.ndarray,
        targets: Sequence[int],
        classes: Sequence[str],
        transform: Callable | None = None,
    ) -> None:
        assert data.dtype == np.uint8 and data.ndim == 4 and data.shape[-1] == 3, data.shape
        assert len(data) == len(targets)
        self.data = data
        self.targets = [int(t) for t in targets]
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self.class_counts = class_counts(self.targets, self.num_classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        img = Image.fromarray(self.data[index])  # (H, W, 3) uint8 -> RGB
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[index]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n={len(self)}, num_classes={self.num_classes}, "
                f"max/min per class={max(self.class_counts)}/{min(self.class_counts)})")


def subsample_longtail(
    data: np.ndarray, targets: np.ndarray, num_classes: int,
    imb_factor: float, imb_type: str, seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Cao et al. long-tail subset of a balanced split; n_max = the largest class."""
    n_max = int(np.bincount(targets, minlength=num_classes).max())
    counts = longtail_counts(n_max, num_classes, imb_factor, imb_type)
    idx = longtail_indices(targets, counts, seed)
    return data[idx], targets[idx]


def grey_to_rgb(x: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 -> (N, H, W, 3) uint8 by repeating the channel."""
    return np.ascontiguousarray(np.repeat(x[..., None], 3, axis=-1))
