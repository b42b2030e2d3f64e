"""The segmentation methods: one table, read by the config and the segmentation task.

A method here is which criterion the decode head trains with and the `model.*` / `loss.*` keys
it uses, with their defaults (as `gpaco.tasks.classification.methods.METHODS` is for classification):
- `ce`: CE on the decode logits + aux_weight x CE on the FCN aux head (the baseline);
- `gpaco`: the same + the per-pixel GPaCo term on the stride-4 projection (paper-spec 6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gpaco.errors import UserError
from gpaco.losses.pixel_paco import PixelPaCoLoss
from gpaco.losses.segmentation import SegmentationLoss


@dataclass(frozen=True)
class SegmentationMethod:
    """model_options / loss_options: the `model.*` / `loss.*` keys and their defaults;
    `contrastive`: whether the model has the projection branch and the loss the GPaCo term."""

    contrastive: bool
    model_options: Mapping[str, Any]
    loss_options: Mapping[str, Any]
    summary: str


SEGMENTATION_METHODS: Mapping[str, SegmentationMethod] = MappingProxyType({
    "ce": SegmentationMethod(
        contrastive=False, model_options=MappingProxyType({}),
        loss_options=MappingProxyType({}),
        summary="CE decode loss + 0.4 x auxiliary FCN CE (the baseline)"),
    "gpaco": SegmentationMethod(
        contrastive=True, model_options=MappingProxyType({"dim": 128}),
        loss_options=MappingProxyType({"alpha": 0.01, "temperature": 0.07, "num_samples": 8192}),
        summary="CE + 0.4 x aux CE + per-pixel GPaCo (K pixels per image, stride-4 features)"),
})


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
    unknown = sorted(set(loss_options) - set(method.loss_options))
    if unknown:
        raise UserError(f"segmentation method {name!r} does not take {', '.join(unknown)}")
    options = {**method.loss_options, **loss_options}
    paco = PixelPaCoLoss(num_classes, seed=seed, **options) if method.contrastive else None
    return SegmentationLoss(paco, aux_weight=aux_weight, ce_average=ce_average)
