"""What a backbone name means, so that two spellings of one network compare equal."""

from __future__ import annotations

from gpaco.models.backbones import BACKBONES
from gpaco.models.timm_names import TIMM_PREFIX


def canonical_backbone(name: str) -> str:
    """The network `create_backbone(name)` builds, as one string: a bare name gpaco does not
    define is timm's model of that name, so `timm:vit_base_patch16_224` and
    `vit_base_patch16_224` are one network; `timm:resnet50` (timm's) and `resnet50`
    (torchvision's) stay two."""
    bare = name[len(TIMM_PREFIX):] if name.startswith(TIMM_PREFIX) else name
    return name if bare in BACKBONES else f"{TIMM_PREFIX}{bare}"


def same_backbone(a: str, b: str) -> bool:
    return canonical_backbone(a) == canonical_backbone(b)
