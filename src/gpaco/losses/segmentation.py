"""The segmentation training loss: CE(decode) + aux_weight * CE(aux) + the per-pixel GPaCo term
(+ lovasz_weight * Lovasz-softmax of the decode logits, the authors' `paco11` heads).

As in the authors' mmsegmentation 0.17 setup (paper-spec section 6, extensions-spec D):
logits are upsampled bilinearly (align_corners=False) to the label size, and the CE is
averaged over *all* pixels with ignored ones counting as zeros (`ce_average="all"`; mmseg
0.x's default reduction). `ce_average="valid"` averages over the labelled pixels instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.losses._numerics import upcast
from gpaco.losses.lovasz import lovasz_softmax
from gpaco.losses.pixel_paco import PixelPaCoLoss

CE_AVERAGES = ("all", "valid")


@dataclass
class SegmentationLossInputs:
    """One training step's criterion inputs, in the order `SegmentationLoss` takes them:
    decode logits (N, C, h, w), labels (N, H, W), aux logits or None, embeddings or None."""

    logits: Tensor
    labels: Tensor
    aux_logits: Tensor | None
    embeddings: Tensor | None


def pixel_cross_entropy(
    logits: Tensor, labels: Tensor, *, ignore_index: int = 255, average: str = "all"
) -> Tensor:
    """CE of (N, C, h, w) logits against (N, H, W) labels, logits resized to (H, W) first."""
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    per_pixel = F.cross_entropy(upcast(logits), labels, ignore_index=ignore_index, reduction="none")
    if average == "all":
        return per_pixel.mean()
    return per_pixel.sum() / (labels != ignore_index).sum().clamp_min(1)


class SegmentationLoss(nn.Module):
    """`criterion(logits, labels, aux_logits=None, embeddings=None) -> scalar`.

    `pixel_paco` (optional) gets the embeddings and the *un-upsampled* decode logits, which
    serve as the center logits. Without it the module is the CE-only baseline.
    """

    def __init__(
        self,
        pixel_paco: PixelPaCoLoss | None = None,
        *,
        aux_weight: float = 0.4,
        paco_weight: float = 1.0,
        ignore_index: int = 255,
        ce_average: str = "all",
        lovasz_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if ce_average not in CE_AVERAGES:
            raise UserError(f"ce_average must be one of {CE_AVERAGES}, got {ce_average!r}")
        if min(aux_weight, paco_weight, lovasz_weight) < 0:
            raise UserError(f"loss weights must be >= 0, got aux {aux_weight}, paco {paco_weight}, "
                            f"lovasz {lovasz_weight}")
        self.lovasz_weight = float(lovasz_weight)
        self.pixel_paco = pixel_paco
        self.aux_weight = float(aux_weight)
        self.paco_weight = float(paco_weight)
        self.ignore_index = int(ignore_index)
        self.ce_average = ce_average

    def parts(
        self,
        logits: Tensor,
        labels: Tensor,
        aux_logits: Tensor | None = None,
        embeddings: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """The weighted terms, by name ("ce", "aux", "paco", "lovasz"); their sum is the loss."""
        ce = dict(ignore_index=self.ignore_index, average=self.ce_average)
        terms = {"ce": pixel_cross_entropy(logits, labels, **ce)}
        if aux_logits is not None and self.aux_weight > 0:
            terms["aux"] = self.aux_weight * pixel_cross_entropy(aux_logits, labels, **ce)
        if self.pixel_paco is not None:
            if embeddings is None:
                raise ValueError("the GPaCo term needs the projection embeddings")
            terms["paco"] = self.paco_weight * self.pixel_paco(embeddings, logits, labels)
        if self.lovasz_weight > 0:
            terms["lovasz"] = self.lovasz_weight * lovasz_softmax(
                logits, labels, ignore_index=self.ignore_index)
        return terms

    def forward(
        self,
        logits: Tensor,
        labels: Tensor,
        aux_logits: Tensor | None = None,
        embeddings: Tensor | None = None,
    ) -> Tensor:
        return torch.stack(list(self.parts(logits, labels, aux_logits, embeddings).values())).sum()

    def extra_repr(self) -> str:
        return (
            f"aux_weight={self.aux_weight}, paco_weight={self.paco_weight}, "
            f"ignore_index={self.ignore_index}, ce_average={self.ce_average!r}, "
            f"lovasz_weight={self.lovasz_weight}"
        )
