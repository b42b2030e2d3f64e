"""Generated benchmark folders of the exact on-disk layouts, and a model that reads colours.

Every class k of the 1000 gets a distinct solid colour (10 levels per channel, 25 apart); an
image of that colour is classified as k by `ColourModel`, which survives JPEG and resizing.
Writing an image of another class's colour into a folder makes one known mistake.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn

from gpaco.data.transforms import IMAGENET_MEAN, IMAGENET_STD

SIDE = 8  # tiny images; evaluate with image_size=SIDE, resize_size=SIDE


def colour(k: int) -> tuple[int, int, int]:
    return (k % 10 * 25 + 10, k // 10 % 10 * 25 + 10, k // 100 % 10 * 25 + 10)


def write_jpeg(path: Path, k: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (SIDE, SIDE), colour(k)).save(path, "JPEG", quality=95)


def write_class_folders(root: Path, wnids: list[str], labels: Iterable[int],
                        wrong: set[int] = frozenset(), per_class: int = 1) -> None:
    """`root/<wnid>/i.JPEG` with the class's colour; for labels in `wrong` the colour of label+1."""
    for wnid, k in zip(wnids, labels):
        for i in range(per_class):
            shown = (k + 1) % 1000 if (k in wrong and i == 0) else k
            write_jpeg(root / wnid / f"{i}.JPEG", shown)


class ColourModel(nn.Module):
    """Logits = -squared distance of the mean colour to each class colour (1000 columns).

    `decoy`: a column that always wins (to show that ImageNet-R's mask is applied).
    """

    def __init__(self, decoy: int | None = None) -> None:
        super().__init__()
        self.register_buffer("palette", torch.tensor([colour(k) for k in range(1000)]).float() / 255)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.decoy = decoy

    def forward(self, x: Tensor) -> Tensor:
        rgb = (x * self.std + self.mean).mean(dim=(2, 3))
        logits = -torch.cdist(rgb, self.palette) ** 2
        if self.decoy is not None:
            logits[:, self.decoy] = 1e4
        return logits
