"""Cross-entropy with the uniform criterion signature (features are ignored)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.losses._numerics import upcast


def cross_entropy(
    logits: Tensor,
    labels: Tensor,
    *,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
) -> Tensor:
    """Mean CE over the anchors whose label is not `ignore_index`; 0 (not NaN) if there is none."""
    per_anchor = F.cross_entropy(
        upcast(logits),
        labels,
        reduction="none",
        label_smoothing=label_smoothing,
        ignore_index=-100 if ignore_index is None else ignore_index,
    )
    if ignore_index is None:
        return per_anchor.mean()
    return per_anchor.sum() / (labels != ignore_index).sum().clamp_min(1)


def soft_target_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean of -sum_c target_c log softmax_c (timm's SoftTargetCrossEntropy): for mixup /
    cutmix targets, which carry their own label smoothing."""
    return -(targets * F.log_softmax(upcast(logits), dim=-1)).sum(-1).mean()


class CrossEntropyLoss(nn.Module):
    """`criterion(features, labels, center_logits)`: CE of the A anchors' logits.

    Labels are class indices (smoothed by `label_smoothing`) or (A, C) soft targets from batch
    mixing, used as given.
    """

    def __init__(self, label_smoothing: float = 0.0, ignore_index: int | None = None) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise UserError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = ignore_index

    def forward(self, features: Tensor | None, labels: Tensor, center_logits: Tensor) -> Tensor:
        if labels.is_floating_point():
            return soft_target_cross_entropy(center_logits, labels[: center_logits.shape[0]])
        return cross_entropy(
            center_logits,
            labels[: center_logits.shape[0]],
            label_smoothing=self.label_smoothing,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}, ignore_index={self.ignore_index}"
