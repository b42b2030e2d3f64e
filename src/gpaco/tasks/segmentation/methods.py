"""The segmentation methods: one table, read by the config and the segmentation task.

A method here is which criterion the decode head trains with and the `model.*` / `loss.*` keys
it uses, with their defaults (as `gpaco.tasks.classification.methods.METHODS` is for classification):
- `ce`: CE on the decode logits + aux_weight x CE on the FCN aux head (the baseline);
- `gpaco`: the same + the per-pixel GPaCo term on the stride-4 projection (paper-spec 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from gpaco.config.options import NON_NEGATIVE, POSITIVE, NoOptions
from gpaco.errors import UserError
from gpaco.losses.pixel_paco import PixelPaCoLoss
from gpaco.losses.segmentation import SegmentationLoss


@dataclass(frozen=True)
class SegmentationMethod:
    """model_options / loss_options: dataclasses of the `model.*` / `loss.*` keys, with types and
    defaults; `contrastive`: whether the model has the projection branch and the loss the GPaCo
    term."""

    contrastive: bool
    model_options: type
    loss_options: type
    summary: str


@dataclass
class ProjectionOptions:
    dim: int = field(default=128, metadata=POSITIVE)


@dataclass
class PixelGPaCoOptions:
    alpha: float = field(default=0.01, metadata=NON_NEGATIVE)
    temperature: float = field(default=0.07, metadata=POSITIVE)
    num_samples: int = 8192  # pixels per image (-1: all)


SEGMENTATION_METHODS: dict[str, SegmentationMethod] = {
    "ce": SegmentationMethod(
        contrastive=False, model_options=NoOptions, loss_options=NoOptions,
        summary="CE decode loss + 0.4 x auxiliary FCN CE (the baseline)"),
    "gpaco": SegmentationMethod(
        contrastive=True, model_options=ProjectionOptions, loss_options=PixelGPaCoOptions,
        summary="CE + 0.4 x aux CE + per-pixel GPaCo (K pixels per image, stride-4 features)"),
}


def get_segmentation_method(name: str) -> SegmentationMethod:
    if name not in SEGMENTATION_METHODS:
        raise UserError(f"unknown segmentation method {name!r}; choose one of "
                        f"{', '.join(SEGMENTATION_METHODS)}")
    return SEGMENTATION_METHODS[name]


def build_segmentation_criterion(
    name: str, num_classes: int, *, aux_weight: float, ce_average: str, seed: int | None,
    **loss_options: Any,
) -> SegmentationLoss:
    """Method `name`'s criterion; `loss_options` are its `loss.*` values (defaults if absent)."""
    method = get_segmentation_method(name)
    allowed = {f.name: getattr(method.loss_options(), f.name) for f in fields(method.loss_options)}
    unknown = sorted(set(loss_options) - set(allowed))
    if unknown:
        raise UserError(f"segmentation method {name!r} does not take {', '.join(unknown)}")
    options = {**allowed, **loss_options}
    paco = PixelPaCoLoss(num_classes, seed=seed, **options) if method.contrastive else None
    return SegmentationLoss(paco, aux_weight=aux_weight, ce_average=ce_average)
