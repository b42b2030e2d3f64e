"""Supervised contrastive loss (Khosla et al., 2020) over the PaCo contrast set, no centers."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.losses._contrast import sample_terms


def supcon_loss(
    features: Tensor,
    labels: Tensor,
    *,
    num_anchors: int | None = None,
    temperature: float = 0.07,
    ignore_index: int | None = None,
    anchor_weights: Tensor | None = None,
) -> Tensor:
    """SupCon ("L_out") with the first `num_anchors` rows of `features` (M, d) as anchors.

    Each anchor's loss is the mean negative log-probability of its positives (softmax over all
    columns j != i), times its weight in `anchor_weights` (A,) if given. Anchors with no
    positive contribute 0 and are left out of the mean.
    """
    num_anchors = features.shape[0] if num_anchors is None else num_anchors
    samples = sample_terms(features, labels, num_anchors, temperature, ignore_index)
    has_pos = samples.num_pos > 0
    numerator = samples.pos_logit_sum - samples.num_pos * samples.lse
    per_anchor = torch.where(has_pos, -numerator / samples.num_pos.clamp_min(1.0), 0.0)
    if anchor_weights is not None:
        per_anchor = per_anchor * anchor_weights.to(per_anchor.dtype)
    return per_anchor.sum() / has_pos.sum().clamp_min(1)


class SupConLoss(nn.Module):
    """Criterion form of `supcon_loss`: A = center_logits.shape[0] anchors (all rows if None)."""

    def __init__(self, temperature: float = 0.07, ignore_index: int | None = None) -> None:
        super().__init__()
        if temperature <= 0:
            raise UserError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.ignore_index = ignore_index

    def forward(
        self, features: Tensor, labels: Tensor, center_logits: Tensor | None = None
    ) -> Tensor:
        num_anchors = None if center_logits is None else center_logits.shape[0]
        return supcon_loss(
            features,
            labels,
            num_anchors=num_anchors,
            temperature=self.temperature,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, ignore_index={self.ignore_index}"
