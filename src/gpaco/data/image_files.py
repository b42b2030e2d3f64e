"""Shared machinery of the datasets read image by image from disk (split files, folders)."""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

from PIL import Image
from torch.utils.data import Dataset

from gpaco.data.longtail import class_counts
from gpaco.errors import UserError

ON_BAD_IMAGE = ("error", "skip")


def load_rgb(path: str) -> Image.Image:
    """Open an image file as RGB; raises UserError naming the file if it cannot be decoded."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")  # convert() decodes now, while f is open
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        # PIL reports broken files as OSError (incl. UnidentifiedImageError), ValueError or,
        # for some PNG chunks, SyntaxError.
        raise UserError(f"cannot read image {path}: {type(e).__name__}: {e}") from None


class FileDataset(Dataset):
    """Images listed as paths; `__getitem__` gives (transform(PIL RGB), target).

    on_bad_image="skip" replaces an unreadable image by the next readable one, warns on the
    first occurrence and records it in `bad_files` / `skipped` (the count of distinct files;
    with DataLoader workers each worker keeps its own count).
    """

    def __init__(
        self,
        paths: Sequence[str],
        targets: Sequence[int],
        classes: Sequence[str],
        transform: Callable | None = None,
        on_bad_image: Literal["error", "skip"] = "error",
    ) -> None:
        if on_bad_image not in ON_BAD_IMAGE:
            raise UserError(f"data.on_bad_image must be one of {ON_BAD_IMAGE}, got {on_bad_image!r}")
        self.data = list(paths)
        self.targets = [int(t) for t in targets]
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self.class_counts = class_counts(self.targets, self.num_classes)
        self.transform = transform
        self.on_bad_image = on_bad_image
        self.bad_files: list[str] = []
        self._bad: set[str] = set()

    @property
    def skipped(self) -> int:
        return len(self.bad_files)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        img, target = self._load(index)
        if self.transform is not None:
            img = self.transform(img)
        return img, target

    def _load(self, index: int) -> tuple[Image.Image, int]:
        n = len(self)
        for step in range(n):
            i = (index + step) % n
            if self.data[i] in self._bad:
                continue
            try:
                return load_rgb(self.data[i]), self.targets[i]
            except UserError as e:
                if self.on_bad_image == "error":
                    raise
                if not self.bad_files:
                    warnings.warn(f"{e}; skipping it and any further unreadable image "
                                  "(see dataset.bad_files)", stacklevel=3)
                self.bad_files.append(self.data[i])
                self._bad.add(self.data[i])
        raise UserError(f"none of the {n} images of {type(self).__name__} can be read")
