"""Small helpers shared by the wrappers."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from gpaco.errors import UserError


def feature_dim_of(backbone: nn.Module) -> int:
    """The backbone's pooled feature width (`.feature_dim`, as `create_backbone` sets it)."""
    dim = getattr(backbone, "feature_dim", None)
    if not isinstance(dim, int) or dim <= 0:
        raise UserError(
            f"backbone {type(backbone).__name__} has no positive integer `.feature_dim`; build it "
            "with gpaco.models.create_backbone or set the attribute"
        )
    return dim


def two_views(views: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    if len(views) != 2:
        raise UserError(f"this model needs two views per image, got {len(views)}")
    return views[0], views[1]
