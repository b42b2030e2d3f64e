"""The ImageNet-1k and ImageNet-R class lists (WordNet ids) shipped in gpaco/assets.

`imagenet_wnids()` is sorted, which is torchvision `ImageFolder`'s class order and the label
order of every ImageNet-1k classifier; ImageNet-R's 200 classes are a subset (sources in
gpaco/assets/SOURCE-wnids.md).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from gpaco.errors import UserError


def _read(name: str) -> tuple[str, ...]:
    try:
        text = (resources.files("gpaco") / "assets" / name).read_text(encoding="ascii")
    except (FileNotFoundError, OSError) as err:
        raise UserError(f"gpaco/assets/{name} is missing ({err}); reinstall gpaco") from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k wnids in sorted order (index = class label)."""
    return _read("imagenet_wnids.txt")


@cache
def imagenet_r_wnids() -> tuple[str, ...]:
    """The 200 ImageNet-R wnids in sorted order (index = ImageNet-R label)."""
    return _read("imagenet_r_wnids.txt")


@cache
def imagenet_r_indices() -> tuple[int, ...]:
    """Positions of the ImageNet-R classes among the 1,000 logits (increasing)."""
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    return tuple(index[w] for w in imagenet_r_wnids())
